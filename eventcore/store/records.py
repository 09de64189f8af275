"""What an append returns, and the error a lost race gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import orjson


class ConcurrencyError(Exception):
    """Another writer appended this subject version first (or the expected version is stale)."""

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(f"subject {subject}: version {version} was already written or is not next")
        self.subject = subject
        self.version = version


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An appended or stored event: its chain fields (hex) and `body`, the canonical body's text
    as the store keeps it (for rows from before migration 004, jsonb's printed form)."""

    sequence: int
    event_id: UUID
    event_type: str
    subject: str
    subject_version: int
    prevhash: str
    hash: str
    body: str
    _envelope: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def envelope(self) -> dict[str, Any]:
        """The event as the relay publishes it: the body's keys in their stored order, then the
        chain fields. Decoded when first read: most appends' callers never read it, and the
        decode costs about as much as writing the body did (≈ 3.5 µs for a conversation)."""
        envelope = self._envelope
        if envelope is None:
            envelope = orjson.loads(self.body)
            envelope.update(sequence=self.sequence, prevhash=self.prevhash, hash=self.hash)
            object.__setattr__(self, "_envelope", envelope)
        return envelope


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the store keeps it, for the relay: the body's text as written (the canonical
    body the chain hashes, as this release writes it; rows from before migration 004, or written
    by an older release's instance during an upgrade, hold jsonb's printed form) and the chain
    columns."""

    sequence: int
    event_id: UUID
    event_type: str
    subject: str
    body: bytes
    prev_hash: bytes
    hash: bytes


# The body as stored (its canonical text: `json` keeps it verbatim) and the chain columns; the
# envelope is joined here, not in SQL, where `body || jsonb_build_object(...)` parsed, merged
# and printed every row again (docs/performance.md finding 84).
ENVELOPE_COLUMNS = (
    "sequence, event_id, event_type, subject, subject_version, prev_hash, hash, body::text")
READ_STORED = ("SELECT sequence, event_id, event_type, subject, body::text, prev_hash, hash"
               " FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2")


def from_row(row: asyncpg.Record) -> RecordedEvent:
    """The stored event with its envelope as the relay publishes it: the body's keys in their
    stored (canonical) order, then the chain fields, so that the message is the canonical body
    the chain hashes followed by them (`contracts.chain.chained`)."""
    return RecordedEvent(
        sequence=row["sequence"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        subject=row["subject"],
        subject_version=row["subject_version"],
        prevhash=row["prev_hash"].hex(),
        hash=row["hash"].hex(),
        body=row["body"],
    )
