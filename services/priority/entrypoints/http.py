"""Priority's HTTP API (FastAPI; OpenAPI at /openapi.json, docs at /docs).

Deciding a session answers 200 either way: `outcome` is "agreed" (with the priority and its
event) or "not_agreed" (with `reasons`). A failed vote is a result, not a bad request, and the
decision is final, so a proposal cannot be put again and again until it passes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from eventcore.auth import Principal, Role, allow, public
from eventcore.http import correlation_id, problem_response
from services.priority.domain.commands import (
    DecideSession,
    OpenSession,
    RecordAction,
    RecordResponse,
    UpdateActionStatus,
)
from services.priority.handlers.actions import ActionResult, Actions
from services.priority.handlers.common import Rejected, RequestContext
from services.priority.handlers.sessions import Sessions
from services.priority.views import (
    ActionFilter,
    Page,
    get_priority,
    get_session,
    list_actions,
    list_insights,
    list_priorities,
)

router = APIRouter()
# Partners run sessions; service leads and trust systems record actions and move their status;
# everyone concerned (auditors too) reads; auditors change nothing.
_PARTNER, _LEAD, _TRUST = Role.LIVED_EXPERIENCE_PARTNER, Role.SERVICE_LEAD, Role.TRUST_SYSTEM
Partner = Annotated[Principal, Depends(allow(_PARTNER, Role.ADMIN))]
Recorder = Annotated[Principal, Depends(allow(_LEAD, _TRUST, Role.ADMIN))]
_SESSION_READERS = Depends(allow(_PARTNER, _LEAD, Role.AUDITOR, Role.ADMIN))
_READERS = Depends(allow(_PARTNER, _LEAD, _TRUST, Role.AUDITOR, Role.ADMIN))
_ERRORS: dict[int | str, dict[str, Any]] = {400: {}, 404: {}, 409: {}, 413: {}, 422: {}}


def _context(request: Request) -> RequestContext:
    given = correlation_id(request) if "x-correlation-id" in request.headers else None
    return RequestContext(given, request.headers.get("traceparent"))


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def _actions(request: Request) -> Actions:
    actions: Actions = request.app.state.actions
    return actions


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), status_code=status)


def _rejected(exc: Rejected) -> JSONResponse:
    return problem_response(exc.status, exc.error, [(p.field, p.problem) for p in exc.problems])


async def _session_view(request: Request, session_id: UUID, status: int = 200) -> JSONResponse:
    async with _sessions(request).pool.acquire() as conn:
        found = await get_session(conn, session_id)
    if found is None:
        return problem_response(404, "not_found", [("session_id", "no such session")])
    return _json(found, status)


@router.post("/sessions", status_code=201, summary="Open a co-production session",
             responses=_ERRORS)
async def open_session(cmd: OpenSession, request: Request, caller: Partner) -> JSONResponse:
    caller.must_be("opened_by", cmd.opened_by)
    try:
        session_id = await _sessions(request).open(cmd, _context(request))
    except Rejected as exc:
        return _rejected(exc)
    return await _session_view(request, session_id, 201)


@router.get("/sessions/{session_id}", summary="A session and its tally so far", responses=_ERRORS,
            dependencies=[_SESSION_READERS])
async def read_session(session_id: UUID, request: Request) -> JSONResponse:
    return await _session_view(request, session_id)


@router.post("/sessions/{session_id}/responses", summary="Record one partner's response",
             responses=_ERRORS)
async def respond(session_id: UUID, cmd: RecordResponse, request: Request,
                  caller: Partner) -> JSONResponse:
    caller.must_be("partner_id", cmd.partner_id)
    try:
        await _sessions(request).respond(session_id, cmd)
    except Rejected as exc:
        return _rejected(exc)
    return await _session_view(request, session_id)


@router.post("/sessions/{session_id}/decision", summary="Close the session by its agreement rule",
             responses=_ERRORS)
async def decide(session_id: UUID, cmd: DecideSession, request: Request,
                 caller: Partner) -> JSONResponse:
    caller.must_be("decided_by", cmd.decided_by)
    try:
        decision = await _sessions(request).decide(session_id, cmd, _context(request))
    except Rejected as exc:
        return _rejected(exc)
    return _json(asdict(decision))


@router.get("/insights", summary="Insights received (latest revision of each)",
            dependencies=[_SESSION_READERS])
async def read_insights(request: Request, page: Annotated[Page, Query()]) -> Any:
    async with _sessions(request).pool.acquire() as conn:
        return await list_insights(conn, page)


@router.get("/priorities", summary="Agreed priorities, newest first", dependencies=[_READERS])
async def read_priorities(request: Request, page: Annotated[Page, Query()]) -> Any:
    async with _sessions(request).pool.acquire() as conn:
        return await list_priorities(conn, page)


@router.get("/priorities/{priority_id}", summary="One priority and the actions against it",
            responses=_ERRORS, dependencies=[_READERS])
async def read_priority(priority_id: UUID, request: Request) -> Any:
    async with _sessions(request).pool.acquire() as conn:
        found = await get_priority(conn, priority_id)
    if found is None:
        return problem_response(404, "not_found", [("priority_id", "no such priority")])
    return found


@router.post("/actions", status_code=201, summary="Record an action against agreed priorities",
             responses=_ERRORS)
async def record_action(cmd: RecordAction, request: Request, caller: Recorder) -> JSONResponse:
    caller.must_be("recorded_by", cmd.recorded_by)
    try:
        return _action(await _actions(request).record(cmd, _context(request)), 201)
    except Rejected as exc:
        return _rejected(exc)


@router.post("/actions/{action_id}/status", summary="Update an action's status (a new version)",
             responses=_ERRORS)
async def update_status(action_id: UUID, cmd: UpdateActionStatus, request: Request,
                        caller: Recorder) -> JSONResponse:
    caller.must_be("recorded_by", cmd.recorded_by)
    try:
        return _action(await _actions(request).update_status(action_id, cmd, _context(request)))
    except Rejected as exc:
        return _rejected(exc)


@router.get("/actions", summary="Actions, by priority, status or source", dependencies=[_READERS])
async def read_actions(request: Request, filters: Annotated[ActionFilter, Query()]) -> Any:
    async with _actions(request).pool.acquire() as conn:
        return await list_actions(conn, filters)


@router.get("/health/live", dependencies=[Depends(public("liveness probe"))])
async def live() -> dict[str, str]:
    return {"status": "ok"}


def _action(result: ActionResult, status: int = 200) -> JSONResponse:
    return _json(asdict(result), status)


def include_routes(app: FastAPI) -> None:
    app.include_router(router)
