"""One event appended by one statement that chains it by itself: in the caller's transaction,
or as its own (with the caller's writes, and grouped with other callers of the statement).

Inside a transaction the head row stays locked until the caller commits, so concurrent callers
queue on it anyway; chaining in Python from a head kept in memory would then miss whenever their
statements reach the server in another order than they were sent, and each miss holds the lock
longer. Here the statement reads the locked head and computes the hash in SQL (the algorithm of
`contracts.chain`): one round trip, never a retry, whatever the order.

A caller may add its own writes to that statement (`with_writes`: its read models, say). Outside
a transaction the statement is then the whole unit of work: one round trip instead of BEGIN,
statements and COMMIT, and the head row locked only while it runs. Callers of one such statement
at the same time share a group commit (`append_many`): the statement run once per caller, in one
pipelined round trip and one implicit transaction (docs/performance.md, finding 100).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import asyncpg

from eventcore.store.batch import BatchConflict, Head, Prepared, conflict_of
from eventcore.store.records import RecordedEvent

# $1 event id, $2 type, $3 subject, $4 version, $5 body text, $6 body digest, $7 source,
# $8 NOTIFY channel (NULL: no NOTIFY). `ins` has no row when version - 1 is not in the store
# (a conflict).
_CHAIN_AND_INSERT = """
head AS (
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
    SELECT head.sequence, $1, $2, $3, $4, $5::text::json, head.prev_hash, head.hash FROM head
    RETURNING sequence, prev_hash, hash
)"""
# Always one row (NULLs when `ins` has none: a conflict), so that the results of the statement
# run for several callers at once (`append_many`) line up with the callers.
_RESULT = ("SELECT ins.sequence, ins.prev_hash, ins.hash,"
           " CASE WHEN $8::text IS NOT NULL AND ins.sequence IS NOT NULL"
           " THEN pg_notify($8, '') END FROM (SELECT) AS one LEFT JOIN ins ON true")
_APPEND_ONE = f"WITH {_CHAIN_AND_INSERT}\n{_RESULT}"

#: The first parameter number free for the writes a caller adds to an append (`with_writes`).
FIRST_FREE_PARAM = 9
_PARAM = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=256)  # a handful of statements, built on every request otherwise
def numbered_from(first: int, sql: str) -> str:
    """`sql` with its parameters $1, $2, ... renumbered $first, $first + 1, ..."""
    return _PARAM.sub(lambda m: f"${int(m[1]) + first - 1}", sql)


@functools.lru_cache(maxsize=256)
def with_writes(writes: str) -> str:
    """The one-event append with the caller's own writes in the same statement.

    `writes` are data-modifying CTEs (`name AS (INSERT ... SELECT ... FROM ins ...)`, comma
    separated) whose parameters are numbered from `FIRST_FREE_PARAM`. They may read `ins`
    (sequence, prev_hash, hash) and must write only through it: on a conflict `ins` has no row,
    and then nothing at all is written.
    """
    return f"WITH {_CHAIN_AND_INSERT},\n{writes}\n{_RESULT}"


async def append_one(conn: asyncpg.Connection, source: str, channel: str | None, row: Prepared,
                     statement: str = _APPEND_ONE, args: Sequence[Any] = ()
                     ) -> tuple[RecordedEvent, Head]:
    """Append `row` (in the caller's transaction if there is one, else the statement is its
    own); the record, and the head it leaves. `statement` may be `with_writes(...)`, and
    `args` its parameters from `FIRST_FREE_PARAM`."""
    [outcome] = await append_many(conn, source, channel, statement, [(row, args)])
    if isinstance(outcome, BatchConflict):
        raise outcome
    return outcome, Head(outcome.sequence, bytes.fromhex(outcome.hash))


async def append_many(conn: asyncpg.Connection, source: str, channel: str | None, statement: str,
                      items: Sequence[tuple[Prepared, Sequence[Any]]]
                      ) -> list[RecordedEvent | BatchConflict]:
    """`statement` (`_APPEND_ONE` or `with_writes(...)`) run for each (row, args) in turn, in one
    round trip: asyncpg pipelines the runs and ends them with one Sync, so outside a transaction
    they are one implicit transaction (all commit, or an error undoes all) with one WAL flush,
    and each run chains on the head the run before it moved. Per row its record, or the conflict
    that left it unwritten (the other rows are written all the same)."""
    runs = [(row.draft.id, row.draft.type, row.draft.subject, row.draft.subjectversion, row.text,
             row.digest, source, channel, *args) for row, args in items]
    try:
        # One run by `fetchrow`, which OpenTelemetry's asyncpg instrumentation (under
        # `opentelemetry-instrument`) gives a span; it does not wrap `fetchmany`.
        found = ([await conn.fetchrow(statement, *runs[0])] if len(runs) == 1
                 else await conn.fetchmany(statement, runs))
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "events_subject_version_key":  # a version 1 taken, or two
            raise conflict_of(exc, [row for row, _ in items]) from exc  # callers' alike
        raise
    if len(found) != len(items):  # pragma: no cover - one result row per run, always
        raise RuntimeError(f"{len(found)} results for {len(items)} appends")
    out: list[RecordedEvent | BatchConflict] = []
    for (row, _), result in zip(items, found, strict=True):
        draft = row.draft
        if result["sequence"] is None:
            out.append(BatchConflict(draft.subject, draft.subjectversion, 0))
            continue
        out.append(RecordedEvent(result["sequence"], draft.id, draft.type, draft.subject,
                                 draft.subjectversion, result["prev_hash"].hex(),
                                 result["hash"].hex(), row.text))
    return out
