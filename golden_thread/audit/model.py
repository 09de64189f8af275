"""What a replay finds: breaks in the history and the verification summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from contracts.chain import ChainBreak, ChainHead
from contracts.problems import ContractError


class BreakKind(StrEnum):
    """Why a history does not verify."""

    CHAIN = "chain"  # sequence gap, repeat, prevhash or hash mismatch (contracts.ChainVerifier)
    CONFLICT = "conflict"  # a second, different event claims a position already taken
    CAUSATION = "causation"  # a causation id names nothing seen, or something recorded later
    NOTIFICATION = "notification"  # a ParticipantNotified that leads back to no conversation
    CONTRACT = "contract"  # a message that is not a valid event at all


@dataclass(frozen=True, slots=True)
class AuditBreak:
    """One place the history does not hold. Names the event; never carries its contents."""

    kind: BreakKind
    source: str
    sequence: int
    event_id: str
    reason: str
    #: When the broken event was recorded (epoch seconds); orders breaks across sources.
    recorded: float = 0.0

    @classmethod
    def from_chain(cls, found: ChainBreak, recorded: float) -> AuditBreak:
        return cls(BreakKind.CHAIN, found.source, found.sequence, str(found.event_id),
                   found.reason, recorded)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "source": self.source,
            "sequence": self.sequence,
            "event_id": self.event_id,
            "reason": self.reason,
            "recordedtime": _iso(self.recorded) if self.recorded else None,
        }

    def __str__(self) -> str:
        return f"{self.source} #{self.sequence} (event {self.event_id}): {self.reason}"


def contract_break(raw: bytes | str, error: ContractError) -> AuditBreak:
    """Name the message as far as it names itself; never quote what it carries."""
    try:
        message: Any = json.loads(raw)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        message = {}
    source = message.get("source")
    sequence = message.get("sequence")
    event_id = message.get("id")
    fields = ", ".join(sorted({p.field for p in error.problems}))
    return AuditBreak(
        BreakKind.CONTRACT,
        source if isinstance(source, str) and len(source) <= 64 else "?",
        sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else 0,
        event_id if isinstance(event_id, str) and len(event_id) <= 64 else "?",
        f"not a valid event ({fields})",
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """How far one source's chain was replayed, to compare with a trusted anchor."""

    events: int
    head: ChainHead
    duplicates: int = 0
    after_as_of: int = 0


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of a replay: counts, each source's head, and the breaks (first first)."""

    events: int
    messages: int
    duplicates: int
    sources: dict[str, SourceSummary]
    counts_by_type: dict[str, int]
    breaks: tuple[AuditBreak, ...]
    breaks_total: int
    as_of: datetime | None = None
    max_buffered: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def verified(self) -> bool:
        return self.breaks_total == 0

    @property
    def first_break(self) -> AuditBreak | None:
        return self.breaks[0] if self.breaks else None

    def as_json(self) -> dict[str, Any]:
        first = self.first_break
        return {
            "verified": self.verified,
            "events": self.events,
            "messages": self.messages,
            "duplicates": self.duplicates,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "sources": {
                name: {
                    "events": s.events,
                    "head_sequence": s.head.sequence,
                    "head_hash": s.head.hash,
                    "duplicates": s.duplicates,
                    "after_as_of": s.after_as_of,
                }
                for name, s in sorted(self.sources.items())
            },
            "counts_by_type": dict(sorted(self.counts_by_type.items())),
            "first_break": None if first is None else first.as_json(),
            "breaks_total": self.breaks_total,
            "breaks": [b.as_json() for b in self.breaks],
            "max_buffered": self.max_buffered,
            "notes": list(self.notes),
        }
