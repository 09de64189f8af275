"""Co-production sessions: open one, record partners' responses, decide by the agreement rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID, uuid4

import asyncpg

from contracts import (
    ActorRole,
    AgreementRule,
    PriorityAgreed,
    PriorityAgreedEvent,
    Tally,
    new_event,
)
from eventcore.lineage import continue_trace
from eventcore.store import EventStore
from services.priority.config import SOURCE
from services.priority.domain.agreement import (
    MAX_PARTNERS,
    check_rule_bounds,
    tally_of,
    why_not_agreed,
)
from services.priority.domain.commands import DecideSession, OpenSession, RecordResponse
from services.priority.domain.rules import RuleBroken
from services.priority.handlers.common import Rejected, RequestContext, append, not_found


@dataclass(frozen=True)
class Decision:
    session_id: UUID
    outcome: Literal["agreed", "not_agreed"]
    tally: Tally
    reasons: list[str]
    priority_id: UUID | None = None
    event_id: UUID | None = None
    sequence: int | None = None


@dataclass
class Sessions:
    pool: asyncpg.Pool
    store: EventStore
    default_rule: AgreementRule
    min_quorum: int

    async def open(self, cmd: OpenSession, ctx: RequestContext) -> UUID:
        rule = cmd.rule or self.default_rule
        broken = check_rule_bounds(rule, self.min_quorum)
        if broken:
            raise Rejected(broken)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT insight_id, revision, event_id FROM insights"
                " WHERE insight_id = ANY($1::uuid[])", list(cmd.insight_ids))
            found = {r["insight_id"]: r for r in rows}
            missing = [RuleBroken(f"insight_ids.{i}", "no insight with this id has been drafted")
                       for i, insight_id in enumerate(cmd.insight_ids) if insight_id not in found]
            if missing:
                raise Rejected(missing)
            session_id = uuid4()
            await conn.execute(
                "INSERT INTO sessions (session_id, statement, rule, opened_by, correlation_id)"
                " VALUES ($1, $2, $3, $4, $5)", session_id, cmd.statement,
                rule.model_dump(mode="json"), cmd.opened_by, ctx.correlation_id or str(uuid4()))
            await conn.executemany(
                "INSERT INTO session_insights (session_id, position, insight_id, revision,"
                " event_id) VALUES ($1, $2, $3, $4, $5)",
                [(session_id, i, iid, found[iid]["revision"], found[iid]["event_id"])
                 for i, iid in enumerate(cmd.insight_ids)])
        return session_id

    async def respond(self, session_id: UUID, cmd: RecordResponse) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _lock_open_session(conn, session_id)
            others = await conn.fetchval(
                "SELECT count(*) FROM session_responses WHERE session_id = $1 AND partner_id <> $2",
                session_id, cmd.partner_id)
            if others >= MAX_PARTNERS:
                raise Rejected([RuleBroken(
                    "partner_id", f"this session already counts the most partners it can "
                    f"({MAX_PARTNERS})")], 409, "session_full")
            await conn.execute(
                "INSERT INTO session_responses (session_id, partner_id, response)"
                " VALUES ($1, $2, $3) ON CONFLICT (session_id, partner_id) DO UPDATE"
                " SET response = EXCLUDED.response, responded_at = now()",
                session_id, cmd.partner_id, cmd.response)

    async def decide(self, session_id: UUID, cmd: DecideSession, ctx: RequestContext) -> Decision:
        """Close the session. Agreed only when `rule.is_met(tally)`; either way it is final."""
        async with self.pool.acquire() as conn, conn.transaction():
            session = await _lock_open_session(conn, session_id)
            rule = AgreementRule.model_validate(session["rule"])
            responses = await conn.fetch(
                "SELECT partner_id, response FROM session_responses WHERE session_id = $1"
                " ORDER BY partner_id", session_id)
            tally = tally_of(r["response"] for r in responses)
            if not rule.is_met(tally):
                reasons = why_not_agreed(rule, tally)
                return await _close_not_agreed(conn, session_id, cmd, tally, reasons)
            insights = await conn.fetch(
                "SELECT insight_id, event_id FROM session_insights WHERE session_id = $1"
                " ORDER BY position", session_id)
            data = PriorityAgreed(
                priority_id=uuid4(), session_id=session_id, statement=session["statement"],
                insight_ids=tuple(r["insight_id"] for r in insights),
                agreed_by=tuple(r["partner_id"] for r in responses if r["response"] == "support"),
                tally=tally, rule=rule)
            draft = new_event(
                PriorityAgreedEvent, data=data, source=SOURCE, subjectversion=1,
                actorid=cmd.decided_by, actorrole=ActorRole.LIVED_EXPERIENCE_PARTNER,
                correlationid=ctx.correlation_id or session["correlation_id"],
                # The journey's trace: that of the first insight (see eventcore.lineage).
                traceparent=await continue_trace(conn, [r["event_id"] for r in insights],
                                                 fallback=ctx.traceparent),
                causationids=[str(r["event_id"]) for r in insights])
            recorded = await append(conn, self.store, draft)
            await conn.execute(
                "UPDATE sessions SET status = 'agreed', decided_by = $2, decided_at = now(),"
                " tally = $3, priority_id = $4 WHERE session_id = $1",
                session_id, cmd.decided_by, tally.model_dump(), data.priority_id)
        return Decision(session_id, "agreed", tally, [], data.priority_id, recorded.event_id,
                        recorded.sequence)


async def _lock_open_session(conn: asyncpg.Connection, session_id: UUID) -> Any:
    session = await conn.fetchrow(
        "SELECT status, rule, statement, correlation_id FROM sessions WHERE session_id = $1"
        " FOR UPDATE", session_id)
    if session is None:
        raise not_found("session_id", "session")
    if session["status"] != "open":
        raise Rejected([RuleBroken("session_id", f"the session is closed ({session['status']})")],
                       409, "session_closed")
    return session


async def _close_not_agreed(
    conn: asyncpg.Connection, session_id: UUID, cmd: DecideSession, tally: Tally,
    reasons: list[str],
) -> Decision:
    await conn.execute(
        "UPDATE sessions SET status = 'not_agreed', decided_by = $2, decided_at = now(),"
        " tally = $3, reasons = $4 WHERE session_id = $1",
        session_id, cmd.decided_by, tally.model_dump(), reasons)
    return Decision(session_id, "not_agreed", tally, reasons)
