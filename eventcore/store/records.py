"""What an append returns, and the error a lost race gives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID


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
