"""The append-only event store: optimistic concurrency, a gapless per-source sequence, a hash chain.

Each source numbers its events 1, 2, 3... and links each to the one before it:
hash = sha256(prev_hash || int8(sequence) || sha256(canonical body)), the algorithm of
`contracts.chain`, so anyone can verify the history from the published events.

**An append of N drafts costs a constant number of round trips** (`batch.py`). Each draft is
serialised once; the N hashes are chained in Python from the source head; one statement checks
the expected subject versions (version v needs v-1 in the store or earlier in the batch; the
unique (subject, subject_version) key catches the rest; either way `ConcurrencyError`), inserts
all N rows from `unnest` arrays, moves the head once and sends one NOTIFY. The statement moves
the head only if it still holds the sequence and hash the rows were chained from, and the head
row's lock (held to commit) serialises appenders, so sequences never gap (a rollback undoes the
move) and become visible in sequence order, which is what makes tailing by sequence safe.
The head chained from is the one this store last wrote, kept in memory: then an append is that
one statement, and outside a transaction its own transaction, committed in the same round trip.
If another writer (another process, or a rolled-back transaction) moved the head meanwhile, the
statement writes nothing, and the append retries once from the head it saw, then reads the head
with `SELECT ... FOR UPDATE` (in a transaction of its own when the caller has none).

Inside the caller's transaction (every service handler) the append joins it: no savepoint, no
commit, and no chaining from memory — the transaction holds the head row until it commits, so
concurrent callers queue on it, and chaining from memory would miss whenever their statements
reach the server out of order. One event is chained by the database itself (`single.py`, one
round trip); more are chained from the head read under `SELECT ... FOR UPDATE`. A version
conflict found by the check raises `ConcurrencyError` without aborting the caller's transaction
(a unique-key conflict does abort it, as any failed statement does).

**An append with the caller's own writes** (`append_with`, `single.with_writes`): one event
and the caller's data-modifying CTEs (read models, say), which read the appended row and write
only through it, in one statement. Outside a transaction that statement is the whole unit of
work: one round trip instead of BEGIN, statements and COMMIT, the head row locked only while it
runs; a conflict or any failing write leaves nothing written. Intake logs a new participant's
conversation this way. Callers of the same statement at the same time share a group commit as
plain appends do (below): the leader runs the statement once per caller in one pipelined round
trip (`single.append_many`, one implicit transaction), so the head row is locked once per group,
not once per caller, and N callers cost one commit (docs/performance.md, finding 100). With a
guard (`guarded.py`), a group is one transaction that locks the callers' own rows first.

**Waking the relay** (`wake_here`). A NOTIFY in a transaction takes a cluster-wide lock
from its commit's start to its end, WAL flush included, so every transaction that sends one
commits after the last one has (PostgreSQL's `PreCommit_Notify`; with 8 connections a one-row
insert with NOTIFY commits 3,800-4,300 times a second here, against 10,900-11,500 without).
So while the relay leads in this process, appends send none: each wakes it directly with the
sequence it reached, and the relay reads until that sequence is visible (an append in a
transaction becomes visible when the caller commits). Appends in a process whose relay does not
lead (a standby replica, a command-line tool) still NOTIFY, for the leader elsewhere.

**Group commit** (`group.py`). Outside a transaction, appends that arrive while another is being
committed queue up, and the next *leader* — the first caller in the queue, on its own connection
— commits the whole queue as one batch: PostgreSQL-style group commit, one statement and one WAL
flush for many callers, each of whom gets back its own `RecordedEvent`s (with a short commit
delay, as PostgreSQL's `commit_delay`, for the callers the last group released). If the group's
batch fails on one caller's conflict, that caller gets its `ConcurrencyError` and the leader
commits the others again as a group (caller by caller when the error names no draft). An append
inside a transaction is never coalesced (its rows must commit or roll back with the caller's own
work). One `EventStore` serves one event store (one schema of one database), as the runtime makes
one per service pool: the leader writes its followers' rows through its own connection.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
import orjson

from contracts.drafts import EventDraft
from eventcore.metrics import CoreMetrics
from eventcore.store.batch import (
    BatchConflict,
    BatchWriter,
    Head,
    Link,
    Prepared,
    prepare,
    recorded,
)
from eventcore.store.group import GroupCommit
from eventcore.store.guarded import (
    Guard,
    GuardedItem,
    GuardRefused,
    GuardSkipped,
    append_guarded,
)
from eventcore.store.records import (
    ENVELOPE_COLUMNS,
    READ_STORED,
    ConcurrencyError,
    RecordedEvent,
    StoredEvent,
    from_row,
)
from eventcore.store.single import (
    FIRST_FREE_PARAM,
    append_many,
    append_one,
    numbered_from,
    with_writes,
)

__all__ = ["FIRST_FREE_PARAM", "ConcurrencyError", "EventStore", "Guard", "GuardRefused",
           "RecordedEvent", "StoredEvent", "notify_channel", "numbered_from"]

_Written = TypeVar("_Written", list[RecordedEvent], list[Link])
log = logging.getLogger(__name__)

#: A group commit of `append_with` callers: (row, arguments, guard key) → record or refusal.
_WithOutcome = RecordedEvent | BatchConflict | GuardRefused
_WithGroup = GroupCommit[asyncpg.Connection, GuardedItem, _WithOutcome]

#: `append_with` statements that get a group commit of their own (intake has one).
_MAX_WITH_GROUPS = 64

#: Events per group commit at most (a caller's own batch may be larger; it then goes alone).
GROUP_MAX_EVENTS = 1_000


def notify_channel(source: str) -> str:
    return f"gt_events_{source}"


def _isolate(exc: Exception) -> bool:
    """Errors one caller's rows can cause, after which the leader's connection is still usable
    (a deadlock too: the group is retried caller by caller, `_write_with` says so)."""
    return isinstance(exc, ConcurrencyError | ValueError) or (
        isinstance(exc, asyncpg.PostgresError)
        and not isinstance(exc, asyncpg.PostgresConnectionError))


def _blame(exc: Exception, rows: Sequence[object]) -> int | None:
    """The row of a failed group batch whose caller the error belongs to, when known."""
    return exc.row if isinstance(exc, BatchConflict) else None


class EventStore:
    """The event store of one source (service), in the schema its pool's search_path names."""

    def __init__(self, source: str, metrics: CoreMetrics | None = None) -> None:
        self.source = source
        self._channel = notify_channel(source)
        self._writer = BatchWriter(source, self._channel, metrics)
        self._wake: Callable[[int | None], None] | None = None
        self._group: GroupCommit[asyncpg.Connection, Prepared, Link] = GroupCommit(
            self._write_group, isolate=_isolate, blame=_blame, max_rows=GROUP_MAX_EVENTS)
        #: `append_with`'s group commits, one per statement (a caller's writes make its own).
        self._with_groups: dict[tuple[str, str | None], _WithGroup] = {}

    async def append(
        self, conn: asyncpg.Connection, drafts: Sequence[EventDraft[Any]]
    ) -> list[RecordedEvent]:
        """Append drafts in order, atomically. Raises ConcurrencyError when a version is taken."""
        rows = prepare(self.source, drafts)
        if not rows:
            return []
        if not conn.is_in_transaction():  # the group's writer wakes the relay (`_write_group`)
            # Each caller makes its own records once the group has committed: the lead passes
            # on before any are built (with cohorts, the next group's statement is sent first).
            return recorded(rows, await self._group.submit(conn, rows))
        if len(rows) == 1:  # chained by the database under the head's lock: one round trip
            return await self._waking(self._one(conn, rows[0]))
        return recorded(rows, await self._waking(self._writer.write(conn, rows)))

    async def _write_group(self, conn: asyncpg.Connection, rows: list[Prepared]) -> list[Link]:
        """A group commit's batch; the relay is woken here, where the rows are known to have
        landed, even when the caller that led the group has been cancelled meanwhile."""
        return await self._waking(self._writer.write(conn, rows))

    async def _one(self, conn: asyncpg.Connection, row: Prepared, *statement: Any
                   ) -> list[RecordedEvent]:
        record, head = await append_one(conn, self.source, self._writer.channel, row, *statement)
        self._writer.wrote(head, [row])
        return [record]

    async def _waking(self, writing: Awaitable[_Written]) -> _Written:
        """`writing`'s records (or links), the relay woken with the last sequence written; or,
        if it failed or was cancelled, woken to read once: its statement may have committed
        all the same."""
        try:
            written = await writing
        except BaseException:
            self._woken(None)
            raise
        last = written[-1]
        self._woken(last.sequence if isinstance(last, RecordedEvent) else last[0])
        return written

    async def append_with(
        self, conn: asyncpg.Connection, draft: EventDraft[Any], writes: str,
        args: Callable[[dict[str, Any]], Sequence[Any]], guard: Guard | None = None,
    ) -> RecordedEvent:
        """Append one draft and the caller's own `writes` in one statement (`single.with_writes`:
        data-modifying CTEs that read `ins`, parameters from `FIRST_FREE_PARAM`, whose values
        `args` gives from the event's body as stored). Outside a transaction that statement is
        its own transaction: event and writes commit together in one round trip, with those of
        every caller of the same statement in its group commit. Raises ConcurrencyError, having
        written nothing, when the version is taken; an error in the caller's writes is its
        alone (the group is then committed again one caller at a time).

        With a `guard` (`guarded.py`) the group's transaction first locks the rows it names; a
        caller it does not let through gets `GuardRefused`, nothing written."""
        [row] = prepare(self.source, [draft])
        statement = with_writes(writes)
        arguments = args(orjson.loads(row.text))
        item = (row, arguments, "" if guard is None else guard.key)
        check = None if guard is None else guard.statement
        group = None if conn.is_in_transaction() else self._with_group(statement, check)
        if group is None and check is None:  # in the caller's transaction, or past the cap
            [record] = await self._waking(self._one(conn, row, statement, arguments))
            return record
        outcome = None if group is None else (await group.submit(conn, [item]))[0]
        if outcome is None or isinstance(outcome, GuardSkipped):  # alone, or its row was held
            [outcome] = await self._write_with(statement, check, conn, [item], wait=True)
        if isinstance(outcome, BatchConflict | GuardRefused):
            raise outcome
        return outcome

    def _with_group(self, statement: str, guard: str | None) -> _WithGroup | None:
        """The group commit of `statement`'s callers (and `guard`'s); None past the cap."""
        group = self._with_groups.get((statement, guard))
        if group is None and len(self._with_groups) < _MAX_WITH_GROUPS:
            group = self._with_groups[statement, guard] = GroupCommit(
                functools.partial(self._write_with, statement, guard, wait=False),
                isolate=_isolate, blame=_blame, max_rows=GROUP_MAX_EVENTS, max_delay_s=0.0)
        return group

    async def _write_with(self, statement: str, guard: str | None, conn: asyncpg.Connection,
                          items: list[GuardedItem], *, wait: bool) -> list[_WithOutcome]:
        """A group of `append_with` calls: one round trip and transaction (with a guard, three
        round trips: `guarded.append_guarded`, skipping rows held elsewhere unless `wait`)."""
        try:
            outcomes: list[_WithOutcome] = list(
                await append_many(conn, self.source, self._writer.channel, statement,
                                  [(row, args) for row, args, _ in items]) if guard is None
                else await append_guarded(conn, self.source, self._writer.channel, statement,
                                          guard, items, wait=wait))
        except BaseException as exc:
            if isinstance(exc, asyncpg.DeadlockDetectedError):  # no writer should make one
                log.warning("an append of %d was a deadlock's victim", len(items))
            self._woken(None)
            raise
        written = [(row, o) for (row, _, _), o in zip(items, outcomes, strict=True)
                   if isinstance(o, RecordedEvent)]
        if written:
            last = written[-1][1]
            self._writer.wrote(Head(last.sequence, bytes.fromhex(last.hash)),
                               [row for row, _ in written])
            self._woken(last.sequence)
        return outcomes

    def wake_here(self, wake: Callable[[int | None], None] | None) -> None:
        """While `wake` is set (by the relay leading in this process), appends call it with the
        last sequence they wrote instead of sending a NOTIFY; None restores the NOTIFY. An append
        that fails or is cancelled calls it with None: its statement may have committed before
        the error reached the caller (a cancellation during the round trip, say)."""
        self._wake = wake
        self._writer.channel = None if wake is not None else self._channel

    def wakes(self, wake: Callable[[int | None], None]) -> bool:
        """Whether appends wake `wake` now (`wake_here`)."""
        return self._wake == wake

    @property
    def notifies(self) -> bool:
        """Whether appends send a NOTIFY (no relay of this process is woken directly)."""
        return self._wake is None

    def _woken(self, sequence: int | None) -> None:
        if self._wake is not None:
            self._wake(sequence)

    async def read_after(
        self, conn: asyncpg.Connection, after_sequence: int, limit: int
    ) -> list[RecordedEvent]:
        rows = await conn.fetch(f"SELECT {ENVELOPE_COLUMNS} FROM events WHERE sequence > $1"
                                " ORDER BY sequence LIMIT $2", after_sequence, limit)
        return [from_row(r) for r in rows]

    async def read_stored_after(
        self, conn: asyncpg.Connection, after_sequence: int, limit: int
    ) -> list[StoredEvent]:
        """As `read_after`, with each body as stored, not decoded: what the relay publishes."""
        rows = await conn.fetch(READ_STORED, after_sequence, limit)
        return [StoredEvent(r[0], r[1], r[2], r[3], r[4].encode(), r[5], r[6]) for r in rows]

    async def load_subject(self, conn: asyncpg.Connection, subject: str) -> list[RecordedEvent]:
        rows = await conn.fetch(
            f"SELECT {ENVELOPE_COLUMNS} FROM events WHERE subject = $1 ORDER BY subject_version",
            subject,
        )
        return [from_row(r) for r in rows]

    async def head(self, conn: asyncpg.Connection) -> int:
        value = await conn.fetchval("SELECT sequence FROM source_head WHERE source = $1", self.source)
        return int(value or 0)

