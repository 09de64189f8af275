"""Feedback's HTTP API (FastAPI; OpenAPI at /openapi.json, docs at /docs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from eventcore.auth import Principal, Role, allow, public
from eventcore.http import problem_response
from eventcore.store import EventStore
from services.feedback.domain.messages import Wording
from services.feedback.peer_work import ClosePeerTask, TaskNotOpen, close_peer_task
from services.feedback.scheduler import Clock
from services.feedback.views import (
    NotificationFilter,
    list_notifications,
    list_peer_tasks,
    story_of_change,
)


@dataclass(frozen=True)
class FeedbackReads:
    """What the routes need, set on app.state.feedback in the lifespan."""

    pool: asyncpg.Pool
    store: EventStore
    wording: Wording
    today: Clock


def _feedback(request: Request) -> FeedbackReads:
    found: FeedbackReads = request.app.state.feedback
    return found


router = APIRouter()
# Peer workers (listeners) see and close follow-ups; partners, leads and auditors see who was told;
# the story of change is for everyone concerned.
_PEER_READERS = Depends(allow(Role.COMMUNITY_LISTENER, Role.AUDITOR, Role.ADMIN))
_NOTIFICATION_READERS = Depends(allow(Role.LIVED_EXPERIENCE_PARTNER, Role.SERVICE_LEAD,
                                      Role.AUDITOR, Role.ADMIN))
_EVERYONE = Depends(allow(Role.COMMUNITY_LISTENER, Role.LIVED_EXPERIENCE_PARTNER,
                          Role.SERVICE_LEAD, Role.TRUST_SYSTEM, Role.AUDITOR, Role.ADMIN))
PeerWorker = Annotated[Principal, Depends(allow(Role.COMMUNITY_LISTENER, Role.ADMIN))]


@router.get("/notifications", summary="Notifications, by action, participant or status",
            dependencies=[_NOTIFICATION_READERS])
async def get_notifications(
    request: Request, filters: Annotated[NotificationFilter, Query()]
) -> list[dict[str, Any]]:
    feedback = _feedback(request)
    async with feedback.pool.acquire() as conn:
        return await list_notifications(conn, filters, feedback.today())


@router.get("/story/{action_id}", summary="The story of change behind one action",
            responses={404: {}}, dependencies=[_EVERYONE])
async def get_story(action_id: UUID, request: Request) -> Any:
    feedback = _feedback(request)
    async with feedback.pool.acquire() as conn:
        story = await story_of_change(conn, action_id, feedback.wording, feedback.today())
    if story is None:
        return problem_response(404, "not_found", [("action_id", "no such action (yet)")])
    return story


@router.get("/peer-tasks", summary="Follow-ups for peer workers to tell people in person",
            dependencies=[_PEER_READERS])
async def get_peer_tasks(
    request: Request,
    status: Literal["open", "done", "cancelled"] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    async with _feedback(request).pool.acquire() as conn:
        return await list_peer_tasks(conn, status, limit)


@router.post("/peer-tasks/{task_id}/done", summary="A peer worker closes a follow-up",
             responses={400: {}, 404: {}, 409: {}, 413: {}, 422: {}})
async def post_peer_task_done(task_id: UUID, cmd: ClosePeerTask, request: Request,
                              caller: PeerWorker) -> Any:
    caller.must_be("actor_id", cmd.actor_id)
    feedback = _feedback(request)
    try:
        closed = await close_peer_task(feedback.pool, feedback.store, task_id, cmd)
    except TaskNotOpen as exc:
        if exc.status is None:
            return problem_response(404, "not_found", [("task_id", "no such peer task")])
        return problem_response(409, "conflict", [("task_id", f"the task is already {exc.status}")])
    return JSONResponse({"task_id": str(closed.task_id), "status": "done",
                         "notification_id": str(closed.notification_id),
                         "outcome": closed.outcome, "recorded": closed.recorded})


@router.get("/health/live", dependencies=[Depends(public("liveness probe"))])
async def live() -> dict[str, str]:
    return {"status": "ok"}


def include_routes(app: FastAPI) -> None:
    app.include_router(router)
