"""Actions a service lead records against agreed priorities, and their status updates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from contracts import ActionTaken, ActionTakenEvent, ActorRole, new_event
from eventcore.lineage import continue_trace
from eventcore.store import EventStore
from services.priority.config import SOURCE
from services.priority.domain.actions import duplicate_key, unknown_priorities
from services.priority.domain.commands import RecordAction, UpdateActionStatus
from services.priority.domain.rules import RuleBroken
from services.priority.handlers.common import Rejected, RequestContext, append, not_found

#: First key of the advisory locks that serialise duplicate checks (the second is the key's hash).
_DUPLICATE_LOCK_SPACE = 0x70726900  # "pri\0"

_FIELDS = ("action_id", "priority_ids", "description", "service", "place", "framework",
           "framework_area", "status")


@dataclass(frozen=True)
class ActionResult:
    action_id: UUID
    version: int
    status: str
    event_id: UUID
    sequence: int | None  # None when nothing changed and nothing was emitted
    changed: bool = True


@dataclass
class Actions:
    pool: asyncpg.Pool
    store: EventStore

    async def record(self, cmd: RecordAction, ctx: RequestContext) -> ActionResult:
        async with self.pool.acquire() as conn, conn.transaction():
            agreed = await _agreed_event_ids(conn, cmd.priority_ids)
            broken = unknown_priorities(cmd.priority_ids, agreed)
            if broken:
                raise Rejected(broken)
            key = duplicate_key(cmd.description, cmd.service, cmd.place, cmd.priority_ids)
            # Two leads recording the same action at once: the second waits, then sees the first.
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))",
                               _DUPLICATE_LOCK_SPACE, key)
            existing = await conn.fetchval(
                "SELECT action_id FROM actions WHERE duplicate_key = $1 ORDER BY first_recorded"
                " LIMIT 1", key)
            if existing is not None:
                raise Rejected([RuleBroken(
                    "description", f"duplicate of action {existing}: the same description, "
                    "service and place against the same priorities; update its status instead")],
                    409, "duplicate_action")
            data = ActionTaken(action_id=uuid4(), **cmd.model_dump(exclude={"recorded_by"}))
            ctx = await _journey(conn, ctx, data, agreed)
            recorded = await append(conn, self.store, _draft(data, 1, cmd.recorded_by, ctx, agreed))
        return ActionResult(data.action_id, 1, data.status, recorded.event_id, recorded.sequence)

    async def update_status(
        self, action_id: UUID, cmd: UpdateActionStatus, ctx: RequestContext
    ) -> ActionResult:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT source, version, event_id, {', '.join(_FIELDS)} FROM actions"
                " WHERE action_id = $1 FOR UPDATE", action_id)
            if row is None:
                raise not_found("action_id", "action")
            if row["source"] != SOURCE:
                raise Rejected([RuleBroken(
                    "action_id", "this action was published by another system; its status is "
                    "updated there")], 409, "not_owned")
            if row["status"] == cmd.status:  # a retried request: nothing new to say
                return ActionResult(action_id, row["version"], cmd.status, row["event_id"], None,
                                    changed=False)
            data = ActionTaken.model_validate({**{f: row[f] for f in _FIELDS},
                                               "status": cmd.status})
            agreed = await _agreed_event_ids(conn, data.priority_ids)
            version = row["version"] + 1
            ctx = await _journey(conn, ctx, data, agreed)
            recorded = await append(conn, self.store,
                                    _draft(data, version, cmd.recorded_by, ctx, agreed))
        return ActionResult(action_id, version, cmd.status, recorded.event_id, recorded.sequence)


async def _agreed_event_ids(
    conn: asyncpg.Connection, priority_ids: Iterable[UUID]
) -> dict[UUID, UUID]:
    rows = await conn.fetch(
        "SELECT priority_id, event_id FROM priorities WHERE priority_id = ANY($1::uuid[])",
        list(priority_ids))
    return {r["priority_id"]: r["event_id"] for r in rows}


async def _journey(
    conn: asyncpg.Connection, ctx: RequestContext, data: ActionTaken, agreed: Mapping[UUID, UUID]
) -> RequestContext:
    """Continue the trace of the first priority the action answers (see eventcore.lineage)."""
    rests_on = [agreed[p] for p in data.priority_ids if p in agreed]
    return replace(ctx, traceparent=await continue_trace(conn, rests_on, fallback=ctx.traceparent))


def _draft(
    data: ActionTaken, version: int, actor: str, ctx: RequestContext, agreed: Mapping[UUID, UUID]
) -> Any:
    """ActionTaken rests on the PriorityAgreed events of the priorities it answers."""
    return new_event(
        ActionTakenEvent, data=data, source=SOURCE, subjectversion=version, actorid=actor,
        actorrole=ActorRole.SERVICE_LEAD, correlationid=ctx.correlation_id or str(uuid4()),
        traceparent=ctx.traceparent, causationids=[str(agreed[p]) for p in data.priority_ids])
