"""What every priority use case shares: rejection, request context, append-and-project."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts import EventDraft
from eventcore.store import EventStore, RecordedEvent
from services.priority.domain.rules import RuleBroken
from services.priority.projections import project


class Rejected(Exception):
    """The command breaks a rule; `status` is the HTTP status and `error` the kind that say so."""

    def __init__(
        self, problems: Sequence[RuleBroken], status: int = 422, error: str = "rejected"
    ) -> None:
        super().__init__("; ".join(f"{p.field}: {p.problem}" for p in problems))
        self.problems = list(problems)
        self.status = status
        self.error = error


def not_found(field: str, what: str) -> Rejected:
    return Rejected([RuleBroken(field, f"no such {what}")], 404, "not_found")


@dataclass(frozen=True)
class RequestContext:
    #: None when the caller sent none: a use case may then continue an earlier correlation.
    correlation_id: str | None = None
    traceparent: str | None = None


async def append(
    conn: asyncpg.Connection, store: EventStore, draft: EventDraft[Any]
) -> RecordedEvent:
    """Append one event and fold it into the read models, in the caller's transaction."""
    [recorded] = await store.append(conn, [draft])
    await project(conn, recorded)
    return recorded
