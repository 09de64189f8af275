"""One batch append in a constant number of round trips, whatever its size.

Drafts are prepared once (`prepare`: one canonical JSON text, one digest), chained in
Python from the source head by the algorithm of `contracts.chain.chain_hash` (on bytes), and
written by `_WRITE`: one statement that checks the expected subject versions, moves the head,
inserts every row from `unnest` arrays and sends one NOTIFY (none when the relay leads in this
process: `EventStore`). The head it chains from is either the one this process last
wrote or is writing (kept in memory: the statement locks the head row and moves it only if it
then holds exactly that sequence and hash, so a stale memory costs a retry, never a wrong link);
after a miss, the head the statement found, and failing that, the one read under
`SELECT ... FOR UPDATE`. Because the comparison is made under the lock, an append that chains on
one still committing (an append in a caller's transaction, say) waits for it in the server and
lands. (Sending the next group before the last one commits was tried: the two statements can reach
the server in either order, and the misses cost more than the overlap gained.)
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts.chain import canonical_body
from contracts.drafts import EventDraft
from eventcore.metrics import CoreMetrics
from eventcore.store.records import ConcurrencyError, RecordedEvent
from eventcore.telemetry import current_traceparent


@dataclass(frozen=True, slots=True)
class Prepared:
    """A draft serialised once: the canonical JSON text of its body (the envelope without chain
    fields: what the store keeps, verbatim, as `json`) and that text's sha256 digest."""

    draft: EventDraft[Any]
    text: str
    digest: bytes


class BatchConflict(ConcurrencyError):
    """A conflict at `row` of the batch written (None: not known which), so that a group commit
    gives the error to the caller whose draft it is."""

    def __init__(self, subject: str, version: int, row: int | None) -> None:
        super().__init__(subject, version)
        self.row = row


@dataclass(frozen=True, slots=True)
class Head:
    sequence: int
    hash: bytes


def prepare(source: str, drafts: Sequence[EventDraft[Any]]) -> list[Prepared]:
    out: list[Prepared] = []
    # The current span, read once for the whole batch (the propagator is not free).
    traceparent = current_traceparent() if any(d.traceparent is None for d in drafts) else None
    for draft in drafts:
        if draft.source != source:
            raise ValueError(f"source: event from {draft.source!r} in {source!r} store")
        draft = _with_trace_context(draft, traceparent)
        canonical = canonical_body(draft)  # a draft has no chain fields; the chain assigns them
        out.append(Prepared(draft, canonical.decode(), hashlib.sha256(canonical).digest()))
    return out


def _with_trace_context(draft: EventDraft[Any], traceparent: str | None) -> EventDraft[Any]:
    """Stamp the current trace onto a draft that carries none, so the relay can continue it."""
    if draft.traceparent is None and traceparent is not None:
        return draft.model_copy(update={"traceparent": traceparent})
    return draft


#: Where an appended row landed: its sequence, the previous row's hash and its own (bytes).
Link = tuple[int, bytes, bytes]


def links(head: Head, rows: Sequence[Prepared]) -> list[Link]:
    """(sequence, prev_hash, hash) of each row appended after `head`: `contracts.chain.chain_hash`,
    on bytes (the hex the envelope shows is made by `recorded`, off the append's critical path)."""
    out: list[Link] = []
    sequence, prev = head.sequence, head.hash
    sha256 = hashlib.sha256
    for row in rows:
        sequence += 1
        new = sha256(prev + sequence.to_bytes(8, "big", signed=True) + row.digest).digest()
        out.append((sequence, prev, new))
        prev = new
    return out


def recorded(rows: Sequence[Prepared], chained: Sequence[Link]) -> list[RecordedEvent]:
    """The records of `rows` written where `chained` says (the chain fields in hex)."""
    out: list[RecordedEvent] = []
    for row, (sequence, prev_hash, hash_) in zip(rows, chained, strict=True):
        draft = row.draft
        out.append(RecordedEvent(sequence, draft.id, draft.type, draft.subject,
                                 draft.subjectversion, prev_hash.hex(), hash_.hex(), row.text))
    return out


def must_follow(rows: Sequence[Prepared]) -> list[bool]:
    """Which rows need their subject's previous version already in the store (it is not earlier
    in the batch). A subject version twice in one batch is a conflict with itself."""
    seen: set[tuple[str, int]] = set()
    out: list[bool] = []
    for n, row in enumerate(rows):
        subject, version = row.draft.subject, row.draft.subjectversion
        if (subject, version) in seen:
            raise BatchConflict(subject, version, n)
        out.append(version > 1 and (subject, version - 1) not in seen)
        seen.add((subject, version))
    return out


_LOCK_HEAD = "SELECT sequence, hash FROM source_head WHERE source = $1 FOR UPDATE"

# $1 source, $2/$3 the head chained from, $4/$5 the new head's prev_hash/hash, $6.. the rows.
# The head row is always locked (UPDATE), and only then compared with the head the rows were
# chained from: a statement sent while an earlier batch is still committing waits for it and
# chains on. On a miss the head is left as it was and returned: the head to retry from.
# Bodies go in as one text, separated by U+001E (which JSON text never holds unescaped), and are
# kept as json here (verbatim), so no codec re-encodes them: asyncpg's text[] took ≈ 3.2 µs of
# the client's CPU per 1.3 kB body, one text ≈ 0.75 (docs/performance.md, finding 94). Should a
# body ever hold one raw, its halves are not JSON (and the bodies outnumber the rows, padded
# with NULL ids): the statement fails and writes nothing.
_WRITE = """
WITH d AS (
    SELECT * FROM unnest($6::uuid[], $7::text[], $8::text[], $9::int[],
                         string_to_array($10::text, chr(30)),
                         $11::bytea[], $12::bytea[], $13::bool[]) WITH ORDINALITY
        AS d(event_id, event_type, subject, subject_version, body, prev_hash, hash, must_follow,
             n)
), missing AS (
    SELECT min(d.n) AS n FROM d
     WHERE d.must_follow AND NOT EXISTS (
           SELECT 1 FROM events e
            WHERE e.subject = d.subject AND e.subject_version = d.subject_version - 1)
), head AS (
    UPDATE source_head SET
        sequence = CASE WHEN sequence = $2::bigint AND hash = $3::bytea
                         AND (SELECT n FROM missing) IS NULL
                        THEN $2::bigint + cardinality($6::uuid[]) ELSE sequence END,
        prev_hash = CASE WHEN sequence = $2::bigint AND hash = $3::bytea
                          AND (SELECT n FROM missing) IS NULL
                         THEN $4::bytea ELSE prev_hash END,
        hash = CASE WHEN sequence = $2::bigint AND hash = $3::bytea
                     AND (SELECT n FROM missing) IS NULL
                    THEN $5::bytea ELSE hash END
     WHERE source = $1
    RETURNING sequence, hash
), ins AS (
    INSERT INTO events (sequence, event_id, event_type, subject, subject_version, body,
                        prev_hash, hash)
    SELECT $2::bigint + d.n, d.event_id, d.event_type, d.subject, d.subject_version,
           d.body::json, d.prev_hash, d.hash
      FROM d
     WHERE EXISTS (SELECT 1 FROM head WHERE head.sequence = $2::bigint + cardinality($6::uuid[])
                                        AND head.hash = $5::bytea)
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT n FROM missing) AS missing,
       (SELECT sequence FROM head) AS head_sequence, (SELECT hash FROM head) AS head_hash,
       CASE WHEN $14::text IS NOT NULL AND EXISTS (SELECT 1 FROM ins)
            THEN pg_notify($14, '') END AS notified
"""

_BODY_SEPARATOR = chr(30)  # U+001E, as `chr(30)` in `_WRITE`
_SUBJECT_VERSION_KEY = re.compile(r"=\((?P<subject>.*), (?P<version>\d+)\) already exists")


class BatchWriter:
    """Writes prepared rows to one source's store; remembers the head it last wrote (or is
    writing: an append in a transaction and a group commit may be on their way at once)."""

    def __init__(self, source: str, channel: str, metrics: CoreMetrics | None) -> None:
        self._source = source
        #: The NOTIFY channel, or None for no NOTIFY (`EventStore.wake_here`).
        self.channel: str | None = channel
        self._metrics = metrics
        self._head: Head | None = None

    async def write(self, conn: asyncpg.Connection, rows: Sequence[Prepared]) -> list[Link]:
        """Append `rows` atomically; where each landed (`recorded` makes their records). In the
        caller's transaction if there is one (no savepoint); otherwise the one statement is its
        own transaction, unless the head must be locked."""
        follow = must_follow(rows)
        if conn.is_in_transaction():
            # The caller's transaction holds the head until it commits: chain under the lock,
            # never from memory, so concurrent transactions queue on the row instead of missing
            # and retrying (one event goes by `store.single`, chained in SQL).
            return await self._locked(conn, rows, follow)
        head = self._head
        for _ in range(2):  # from the head in memory, then from the one the miss returned
            if head is None:
                break
            outcome = await self._attempt(conn, rows, follow, head)
            if not isinstance(outcome, Head):
                return outcome
            head = outcome
        async with conn.transaction():
            return await self._locked(conn, rows, follow)

    async def _locked(
        self, conn: asyncpg.Connection, rows: Sequence[Prepared], follow: list[bool]
    ) -> list[Link]:
        record = await conn.fetchrow(_LOCK_HEAD, self._source)
        if record is None:
            raise LookupError(f"source_head has no row for {self._source!r}: run the migrations")
        outcome = await self._attempt(conn, rows, follow, Head(record["sequence"], record["hash"]))
        if not isinstance(outcome, Head):
            return outcome
        raise RuntimeError("source head moved while locked")  # pragma: no cover - it is ours

    async def _attempt(
        self, conn: asyncpg.Connection, rows: Sequence[Prepared], follow: list[bool], head: Head
    ) -> list[Link] | Head:
        """Write the rows chained from `head`; if the head was elsewhere, where it was."""
        chained = links(head, rows)
        prevs = [prev for _, prev, _ in chained]
        hashes = [new for _, _, new in chained]
        target = Head(chained[-1][0], hashes[-1])
        self._head = target  # tentatively: an append sent meanwhile chains on from here
        try:
            result = await conn.fetchrow(
                _WRITE, self._source, head.sequence, head.hash, prevs[-1], hashes[-1],
                [r.draft.id for r in rows], [r.draft.type for r in rows],
                [r.draft.subject for r in rows], [r.draft.subjectversion for r in rows],
                _BODY_SEPARATOR.join([r.text for r in rows]), prevs, hashes, follow,
                self.channel,
            )
        except BaseException as exc:
            self._settle(target, head)
            if isinstance(exc, asyncpg.UniqueViolationError) and (
                    exc.constraint_name == "events_subject_version_key"):
                raise conflict_of(exc, rows) from exc
            raise
        if result is None or result["head_sequence"] is None:
            self._settle(target, head)
            raise LookupError(f"source_head has no row for {self._source!r}: run the migrations")
        if result["inserted"] != len(rows):
            actual = Head(result["head_sequence"], result["head_hash"])
            self._settle(target, actual)
            if result["missing"] is not None:
                n = result["missing"] - 1
                raise BatchConflict(rows[n].draft.subject, rows[n].draft.subjectversion, n)
            return actual
        self._count(rows)
        return chained

    def wrote(self, head: Head, rows: Sequence[Prepared]) -> None:
        """Rows were written elsewhere (`store.single`), leaving `head`: chain on from there,
        unless a later head is known already (two such appends, each its own transaction, may
        have their replies read in either order; a batch still on its way settles itself)."""
        if self._head is None or head.sequence > self._head.sequence:
            self._head = head
        self._count(rows)

    def _settle(self, target: Head, actual: Head) -> None:
        """Our batch did not land on `target`: unless a later batch already chained on from it
        (it will miss too, and settle the head itself), remember where the head really is."""
        if self._head == target:
            self._head = actual

    def _count(self, rows: Sequence[Prepared]) -> None:
        if self._metrics is not None:
            for event_type, count in Counter(r.draft.type for r in rows).items():
                self._metrics.appended.add(count, {"type": event_type})


def conflict_of(exc: asyncpg.UniqueViolationError, rows: Sequence[Prepared]) -> BatchConflict:
    """The conflict the unique (subject, subject_version) key reported, named by its draft (the
    first with that subject and version: of two in one group, either may be the one refused)."""
    found = _SUBJECT_VERSION_KEY.search(exc.detail or "")
    if found is not None:
        for n, row in enumerate(rows):
            if (row.draft.subject, str(row.draft.subjectversion)) == (
                    found["subject"], found["version"]):
                return BatchConflict(row.draft.subject, row.draft.subjectversion, n)
    return BatchConflict(rows[0].draft.subject, rows[0].draft.subjectversion, None)
