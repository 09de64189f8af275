-- received_facts without a second index, and its facts kept as the text written.
--
-- The inbox already admits each event once per consumer, in the same transaction
-- (eventcore/inbox.py: its key is (event_id, consumer)), so the handler that records a fact only
-- ever sees events it has not seen: the unique index on event_id kept the same promise a
-- second time, at the price of a random-order index entry per fact. And the facts are only
-- ever written whole and read whole (`projections.rebuild`), never queried inside, so `json`
-- (the text kept as written) does instead of `jsonb` (parsed into a binary tree on the way in,
-- printed again on the way out). Measured batch by batch in one process on the embedded
-- server (docs/performance.md finding 85): the facts' insert 12.1-13.6 -> 7.2 µs per event.
--
-- Rewriting the column holds an exclusive lock on received_facts while it runs (about a second
-- per million rows here): the feedback consumer waits that long. The lock timeout keeps the
-- migration from queueing it behind the lock: if another transaction holds the table for
-- longer, the migration fails, nothing changes, and the service's next start tries again.
SET LOCAL lock_timeout = '5s';
ALTER TABLE received_facts DROP CONSTRAINT IF EXISTS received_facts_event_id_key;
ALTER TABLE received_facts ALTER COLUMN facts TYPE json USING facts::json;
