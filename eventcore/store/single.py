"""One event appended inside the caller's transaction, chained by the database itself.

Inside a transaction the head row stays locked until the caller commits, so concurrent callers
queue on it anyway; chaining in Python from a head kept in memory would then miss whenever their
statements reach the server in another order than they were sent, and each miss holds the lock
longer. Here the statement reads the locked head and computes the hash in SQL (the algorithm of
`contracts.chain`): one round trip, never a retry, whatever the order.
"""

from __future__ import annotations

import asyncpg

from eventcore.store.batch import BatchConflict, Head, Prepared
from eventcore.store.records import RecordedEvent

# $1 event id, $2 type, $3 subject, $4 version, $5 body text, $6 body digest, $7 source,
# $8 NOTIFY channel. No row when version - 1 is not in the store (a conflict).
_APPEND_ONE = """
WITH head AS (
    UPDATE source_head
       SET sequence = sequence + 1,
           prev_hash = hash,
           hash = sha256(hash || int8send(sequence + 1) || $6::bytea)
     WHERE source = $7
       AND ($4 = 1 OR EXISTS (
             SELECT 1 FROM events WHERE subject = $3 AND subject_version = $4 - 1))
    RETURNING sequence, prev_hash, hash
), ins AS (
    INSERT INTO events (sequence, event_id, event_type, subject, subject_version, body,
                        prev_hash, hash)
    SELECT head.sequence, $1, $2, $3, $4, $5::text::jsonb, head.prev_hash, head.hash FROM head
    RETURNING sequence, prev_hash, hash
)
SELECT sequence, prev_hash, hash, pg_notify($8, '') FROM ins
"""


async def append_one(conn: asyncpg.Connection, source: str, channel: str, row: Prepared
                     ) -> tuple[RecordedEvent, Head]:
    """Append `row` in the caller's transaction; the record, and the head it leaves."""
    draft = row.draft
    try:
        found = await conn.fetchrow(_APPEND_ONE, draft.id, draft.type, draft.subject,
                                    draft.subjectversion, row.text, row.digest, source, channel)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "events_subject_version_key":
            raise BatchConflict(draft.subject, draft.subjectversion, 0) from exc
        raise
    if found is None:
        raise BatchConflict(draft.subject, draft.subjectversion, 0)
    sequence, prev, new = found["sequence"], found["prev_hash"].hex(), found["hash"].hex()
    record = RecordedEvent(sequence, draft.id, draft.type, draft.subject, draft.subjectversion,
                           prev, new, {**row.body, "sequence": sequence, "prevhash": prev,
                                       "hash": new})
    return record, Head(sequence, found["hash"])
