"""Peer workers closing their follow-ups: told in person (recorded as ParticipantNotified) or
could not reach them. One transaction each, under the task's row lock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from contracts import ActorRole
from eventcore.store import EventStore
from services.feedback.recording import Pending, record_told


class ClosePeerTask(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    actor_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
                          description="Pseudonymous id of the peer worker.", examples=["peer-3"])
    outcome: Literal["told", "could_not_reach"] = Field(
        default="told", description="Whether they told the person in person.", examples=["told"])


class TaskNotOpen(Exception):
    def __init__(self, status: str | None) -> None:
        super().__init__("no such peer task" if status is None else f"the task is {status}")
        self.status = status


@dataclass(frozen=True)
class Closed:
    task_id: UUID
    notification_id: UUID
    outcome: str
    recorded: bool


async def close_peer_task(
    pool: asyncpg.Pool, store: EventStore, task_id: UUID, cmd: ClosePeerTask
) -> Closed:
    async with pool.acquire() as conn, conn.transaction():
        task = await conn.fetchrow(
            "SELECT status, notification_id FROM peer_tasks WHERE task_id = $1 FOR UPDATE",
            task_id)
        if task is None or task["status"] != "open":
            raise TaskNotOpen(None if task is None else task["status"])
        row = await conn.fetchrow(
            "SELECT * FROM notifications WHERE notification_id = $1 FOR UPDATE",
            task["notification_id"])
        recorded = False
        if cmd.outcome == "told":
            recorded = await record_told(
                conn, store, Pending.of(row), row["chain"], channel="peer_in_person",
                actor_id=cmd.actor_id, actor_role=ActorRole.COMMUNITY_LISTENER)
        else:
            await conn.execute(
                "UPDATE notifications SET status = 'failed', reason = 'peer could not reach them',"
                " updated_at = now() WHERE notification_id = $1", row["notification_id"])
        await conn.execute(
            "UPDATE peer_tasks SET status = 'done', outcome = $2, done_by = $3, closed_at = now()"
            " WHERE task_id = $1", task_id, cmd.outcome, cmd.actor_id)
    return Closed(task_id, row["notification_id"], cmd.outcome, recorded)
