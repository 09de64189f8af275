"""Read side: insights received, sessions with their tally so far, priorities and actions."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from contracts import AgreementRule
from contracts.fields import SOURCE_PATTERN
from services.priority.domain.agreement import tally_of, why_not_agreed


class Page(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class ActionFilter(Page):
    priority_id: UUID | None = None
    status: Literal["planned", "in_progress", "done"] | None = None
    source: str | None = Field(default=None, max_length=64, pattern=SOURCE_PATTERN)


def _row(r: asyncpg.Record) -> dict[str, Any]:
    return dict(r.items())


async def list_insights(conn: asyncpg.Connection, page: Page) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT insight_id, revision, statement, category, conversation_ids, event_id, source,"
        " drafted_at FROM insights ORDER BY drafted_at DESC, insight_id LIMIT $1 OFFSET $2",
        page.limit, page.offset)
    return [_row(r) for r in rows]


async def get_session(conn: asyncpg.Connection, session_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT session_id, statement, rule, opened_by, opened_at, status, decided_by,"
        " decided_at, reasons, priority_id FROM sessions WHERE session_id = $1", session_id)
    if row is None:
        return None
    session = _row(row)
    responses = await conn.fetch(
        "SELECT response FROM session_responses WHERE session_id = $1", session_id)
    tally = tally_of(r["response"] for r in responses)
    insights = await conn.fetch(
        "SELECT insight_id, revision FROM session_insights WHERE session_id = $1"
        " ORDER BY position", session_id)
    session["insights"] = [_row(r) for r in insights]
    session["tally"] = tally.model_dump()
    if session["status"] == "open":  # what deciding now would say
        reasons = why_not_agreed(AgreementRule.model_validate(session["rule"]), tally)
        session["reasons"] = reasons
        session["would_agree"] = not reasons
    return session


_PRIORITY = ("priority_id, session_id, statement, insight_ids, agreed_by, tally, rule, event_id,"
             " agreed_at")
_ACTION = ("action_id, source, version, event_id, priority_ids, description, service, place,"
           " framework, framework_area, status, first_recorded, last_recorded")


async def list_priorities(conn: asyncpg.Connection, page: Page) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_PRIORITY} FROM priorities ORDER BY sequence DESC LIMIT $1 OFFSET $2",
        page.limit, page.offset)
    return [_row(r) for r in rows]


async def get_priority(conn: asyncpg.Connection, priority_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_PRIORITY} FROM priorities WHERE priority_id = $1",
                              priority_id)
    if row is None:
        return None
    priority = _row(row)
    actions = await conn.fetch(
        f"SELECT {_ACTION} FROM actions WHERE priority_ids @> ARRAY[$1::uuid]"
        " ORDER BY first_recorded", priority_id)
    priority["actions"] = [_row(r) for r in actions]
    return priority


async def list_actions(conn: asyncpg.Connection, f: ActionFilter) -> list[dict[str, Any]]:
    clauses, args = [], []  # type: list[str], list[Any]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.priority_id:
        clauses.append(f"priority_ids @> ARRAY[{arg(f.priority_id)}::uuid]")
    if f.status:
        clauses.append(f"status = {arg(f.status)}")
    if f.source:
        clauses.append(f"source = {arg(f.source)}")
    where = " AND ".join(clauses) or "true"
    rows = await conn.fetch(
        f"SELECT {_ACTION} FROM actions WHERE {where} ORDER BY last_recorded DESC, action_id"
        f" LIMIT {arg(f.limit)} OFFSET {arg(f.offset)}", *args)
    return [_row(r) for r in rows]
