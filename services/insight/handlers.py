"""Insight use cases: draft an insight, revise it.

Each is one transaction: the cited conversations are read (and share-locked), the decision is
made by the pure domain, the InsightDrafted event is appended (the store is the outbox) and the
read models are projected, all committing together or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID, uuid4

import asyncpg

from contracts import ActorRole, InsightDrafted, InsightDraftedEvent, new_event
from contracts.fields import TRACEPARENT_PATTERN
from eventcore.lineage import continue_trace
from eventcore.store import ConcurrencyError, EventStore, RecordedEvent
from eventcore.telemetry import current_traceparent
from services.insight.adapters.evidence import load_evidence
from services.insight.config import SOURCE
from services.insight.domain.commands import DraftInsight, ReviseInsight
from services.insight.domain.insight import (
    Insight,
    RulesBroken,
    StaleRevision,
    causation_ids,
    decide_draft,
    decide_revision,
    fold,
)
from services.insight.domain.rules import EvidenceById, RuleBroken
from services.insight.projections import project

_TRACEPARENT = re.compile(TRACEPARENT_PATTERN)


class Rejected(Exception):
    """The command cannot be carried out; `status` is the HTTP status that says so."""

    def __init__(self, problems: list[RuleBroken], status: int = 422) -> None:
        super().__init__("; ".join(f"{p.field}: {p.problem}" for p in problems))
        self.problems = problems
        self.status = status


@dataclass(frozen=True)
class Accepted:
    insight_id: UUID
    revision: int
    event_id: UUID
    sequence: int


@dataclass(frozen=True)
class RequestContext:
    correlation_id: str
    traceparent: str | None = None

    @classmethod
    def of(cls, correlation_id: str, traceparent_header: str | None) -> RequestContext:
        """The trace to continue: the request's own span if tracing is on (a child of the
        caller's), else the caller's header if well formed; a malformed one is dropped."""
        header = traceparent_header
        valid = header if header and _TRACEPARENT.match(header) else None
        return cls(correlation_id, current_traceparent() or valid)


@dataclass
class Insights:
    pool: asyncpg.Pool
    store: EventStore

    async def draft(self, cmd: DraftInsight, ctx: RequestContext) -> Accepted:
        async with self.pool.acquire() as conn, conn.transaction():
            evidence = await load_evidence(conn, cmd.conversation_ids)
            try:
                payload = decide_draft(uuid4(), cmd, evidence)
            except RulesBroken as exc:
                raise Rejected(exc.problems) from None
            return await self._record(conn, payload, evidence, cmd.partner_id, ctx)

    async def revise(self, insight_id: UUID, cmd: ReviseInsight, ctx: RequestContext) -> Accepted:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                state = await self._load(conn, insight_id)
                evidence = await load_evidence(conn, cmd.conversation_ids)
                payload = decide_revision(state, cmd, evidence)
                return await self._record(conn, payload, evidence, cmd.partner_id, ctx)
        except RulesBroken as exc:
            raise Rejected(exc.problems) from None
        except StaleRevision as exc:
            raise Rejected([RuleBroken("based_on_revision", f"the insight has been revised since; "
                                       f"the latest revision is {exc.latest}")], 409) from None
        except ConcurrencyError:
            raise Rejected([RuleBroken("insight_id", "another revision was recorded at the same "
                                       "time; reload the insight and try again")], 409) from None

    async def _load(self, conn: asyncpg.Connection, insight_id: UUID) -> Insight:
        history = await self.store.load_subject(conn, str(insight_id))
        state = fold(InsightDrafted.model_validate(e.envelope["data"]) for e in history
                     if e.event_type == "InsightDrafted")
        if state is None:
            raise Rejected([RuleBroken("insight_id", "no such insight")], 404)
        return state

    async def _record(
        self, conn: asyncpg.Connection, payload: InsightDrafted, evidence: EvidenceById,
        partner_id: str, ctx: RequestContext,
    ) -> Accepted:
        causes = causation_ids(payload, evidence)
        draft = new_event(
            InsightDraftedEvent, data=payload, source=SOURCE, subjectversion=payload.revision,
            actorid=partner_id, actorrole=ActorRole.LIVED_EXPERIENCE_PARTNER,
            correlationid=ctx.correlation_id,
            # The journey's trace: that of the first cited conversation (see eventcore.lineage).
            traceparent=await continue_trace(conn, causes, fallback=ctx.traceparent),
            causationids=causes,
        )
        [recorded] = await self.store.append(conn, [draft])
        await project(conn, recorded)
        return _accepted(payload, recorded)


def _accepted(payload: InsightDrafted, recorded: RecordedEvent) -> Accepted:
    return Accepted(payload.insight_id, payload.revision, recorded.event_id, recorded.sequence)
