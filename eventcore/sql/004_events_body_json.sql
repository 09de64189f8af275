-- The event body kept as the very text the chain hashes (`json` keeps its input verbatim),
-- not as `jsonb` (parsed into a binary tree, keys reordered, printed again on every read).
-- The canonical body (sorted, compact UTF-8 JSON: contracts.chain.canonical_json) is what the
-- store sends, what its digest covers and what the relay and the audit now read back, so
-- a verifier hashes the stored bytes themselves instead of re-serialising them. Measured on
-- the embedded server (docs/performance.md finding 84): PostgreSQL's work to insert a
-- ConversationLogged body 14.5-19.8 -> 7.5-8.0 µs, to print it on a read 6.5-7.5 -> 2.2-2.7 µs.
--
-- Rows stored before this migration keep jsonb's printed form (keys reordered, spaces after
-- separators): their digest no longer matches their text, and readers fall back to hashing the
-- canonical form of the decoded body, as they always did (golden_thread/audit/record.py).
--
-- Rewriting the column holds an exclusive lock on the events table while it runs (about a
-- second per million rows here): writers of this schema wait that long. The lock timeout keeps
-- the migration from queueing them behind it: if another transaction holds the table for
-- longer, the migration fails, nothing changes, and the service's next start tries again.
SET LOCAL lock_timeout = '5s';
ALTER TABLE events ALTER COLUMN body TYPE json USING body::json;
