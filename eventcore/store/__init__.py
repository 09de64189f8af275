"""The append-only event store: optimistic concurrency, a gapless per-source sequence, a hash chain.

One append is one statement (one round trip): it bumps the source head (whose row lock
serialises appenders, so sequences commit in order and never gap), chains the hash in SQL and
inserts the event. The hash is sha256(prev_hash || int8(sequence) || sha256(canonical body)),
the algorithm of `contracts.chain`, so anyone can verify it from the published events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from contracts.chain import canonical_body
from contracts.drafts import EventDraft
from eventcore.metrics import CoreMetrics
from eventcore.telemetry import current_traceparent


class ConcurrencyError(Exception):
    """Another writer appended this subject version first (or the expected version is stale)."""

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(f"subject {subject}: version {version} was already written or is not next")
        self.subject = subject
        self.version = version


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    sequence: int
    event_id: UUID
    event_type: str
    subject: str
    subject_version: int
    prevhash: str
    hash: str
    envelope: Mapping[str, Any]


_APPEND = """
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
    SELECT head.sequence, $1, $2, $3, $4, $5::jsonb, head.prev_hash, head.hash FROM head
    RETURNING sequence, prev_hash, hash
)
SELECT sequence, prev_hash, hash, pg_notify($8, '') FROM ins
"""

_ENVELOPE_COLUMNS = """
    sequence, event_id, event_type, subject, subject_version, prev_hash, hash,
    body || jsonb_build_object('sequence', sequence, 'prevhash', encode(prev_hash, 'hex'),
                               'hash', encode(hash, 'hex')) AS envelope
"""


def notify_channel(source: str) -> str:
    return f"gt_events_{source}"


class EventStore:
    """The event store of one source (service), in the schema its pool's search_path names."""

    def __init__(self, source: str, metrics: CoreMetrics | None = None) -> None:
        self.source = source
        self._channel = notify_channel(source)
        self._metrics = metrics

    async def append(
        self, conn: asyncpg.Connection, drafts: Sequence[EventDraft[Any]]
    ) -> list[RecordedEvent]:
        """Append drafts in order, atomically. Raises ConcurrencyError when a version is taken."""
        if len(drafts) == 1 or conn.is_in_transaction():
            # One statement is atomic by itself, and inside the caller's transaction a nested
            # one would only add a savepoint's two round trips.
            return [await self._append_one(conn, draft) for draft in drafts]
        async with conn.transaction():
            return [await self._append_one(conn, draft) for draft in drafts]

    async def _append_one(self, conn: asyncpg.Connection, draft: EventDraft[Any]) -> RecordedEvent:
        draft = _with_trace_context(draft)
        body = draft.model_dump(mode="json")
        if body.get("source") != self.source:
            raise ValueError(f"source: event from {body.get('source')!r} in {self.source!r} store")
        digest = hashlib.sha256(canonical_body(draft)).digest()
        try:
            row = await conn.fetchrow(
                _APPEND,
                draft.id,
                draft.type,
                draft.subject,
                draft.subjectversion,
                body,
                digest,
                self.source,
                self._channel,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "events_subject_version_key":
                raise ConcurrencyError(draft.subject, draft.subjectversion) from exc
            raise
        if row is None:
            raise ConcurrencyError(draft.subject, draft.subjectversion)
        if self._metrics is not None:
            self._metrics.appended.add(1, {"type": draft.type})
        sequence, prev, new = row["sequence"], row["prev_hash"].hex(), row["hash"].hex()
        envelope = {**body, "sequence": sequence, "prevhash": prev, "hash": new}
        return RecordedEvent(
            sequence, draft.id, draft.type, draft.subject, draft.subjectversion, prev, new, envelope
        )

    async def read_after(
        self, conn: asyncpg.Connection, after_sequence: int, limit: int
    ) -> list[RecordedEvent]:
        rows = await conn.fetch(
            f"SELECT {_ENVELOPE_COLUMNS} FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
            after_sequence,
            limit,
        )
        return [_recorded(r) for r in rows]

    async def load_subject(self, conn: asyncpg.Connection, subject: str) -> list[RecordedEvent]:
        rows = await conn.fetch(
            f"SELECT {_ENVELOPE_COLUMNS} FROM events WHERE subject = $1 ORDER BY subject_version",
            subject,
        )
        return [_recorded(r) for r in rows]

    async def head(self, conn: asyncpg.Connection) -> int:
        value = await conn.fetchval("SELECT sequence FROM source_head WHERE source = $1", self.source)
        return int(value or 0)


def _with_trace_context(draft: EventDraft[Any]) -> EventDraft[Any]:
    """Stamp the current trace onto a draft that carries none, so the relay can continue it."""
    if draft.traceparent is None:
        traceparent = current_traceparent()
        if traceparent is not None:
            return draft.model_copy(update={"traceparent": traceparent})
    return draft


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        sequence=row["sequence"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        subject=row["subject"],
        subject_version=row["subject_version"],
        prevhash=row["prev_hash"].hex(),
        hash=row["hash"].hex(),
        envelope=row["envelope"],
    )
