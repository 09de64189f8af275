"""Intake's HTTP API (FastAPI; OpenAPI at /openapi.json, docs at /docs)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse

from contracts.fields import PARTICIPANT_ID_PATTERN
from eventcore.auth import Principal, Role, allow, public
from eventcore.http import correlation_id, problem_response
from eventcore.telemetry import current_traceparent
from services.intake.domain.commands import ChangeConsent, EraseParticipant, LogConversation
from services.intake.handlers import Accepted, Intake, Rejected, RequestContext
from services.intake.views import ConversationFilter, get_conversation, list_conversations

#: A participant id in a path: refused (422) unless well formed, before any lookup.
ParticipantPath = Annotated[str, Path(pattern=PARTICIPANT_ID_PATTERN)]


def _context(request: Request) -> RequestContext:
    # The trace context is the request's own server span (a caller's traceparent header is its
    # parent); a malformed header is simply not continued.
    return RequestContext(correlation_id(request), current_traceparent())


def _intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


def _accepted(result: Accepted, status: int) -> JSONResponse:
    body = {"id": result.subject, "participant_id": result.participant_id,
            "event_id": str(result.event_id), "sequence": result.sequence}
    return JSONResponse(body, status_code=status)


def _rejected(exc: Rejected) -> JSONResponse:
    return problem_response(exc.status, "rejected", [(p.field, p.problem) for p in exc.problems])


router = APIRouter()
# Listeners log; partners and auditors read (quotes only for admins and the listener who logged
# the conversation); categories are reference data for everyone.
_LOGGERS = allow(Role.COMMUNITY_LISTENER, Role.ADMIN)
_READERS = allow(Role.COMMUNITY_LISTENER, Role.LIVED_EXPERIENCE_PARTNER, Role.AUDITOR, Role.ADMIN)
_EVERYONE = allow(Role.COMMUNITY_LISTENER, Role.LIVED_EXPERIENCE_PARTNER, Role.SERVICE_LEAD,
                  Role.TRUST_SYSTEM, Role.AUDITOR, Role.ADMIN)
Logger = Annotated[Principal, Depends(_LOGGERS)]
Reader = Annotated[Principal, Depends(_READERS)]


@router.post("/conversations", status_code=201, summary="Log a conversation",
             responses={400: {}, 404: {}, 409: {}, 413: {}, 422: {}})
async def post_conversation(cmd: LogConversation, request: Request, caller: Logger) -> JSONResponse:
    caller.must_be("listener_id", cmd.listener_id)
    try:
        return _accepted(await _intake(request).log_conversation(cmd, _context(request)), 201)
    except Rejected as exc:
        return _rejected(exc)


@router.get("/conversations", summary="List conversations by category, place and date",
            dependencies=[Depends(_READERS)])
async def get_conversations(
    request: Request, filters: Annotated[ConversationFilter, Query()]
) -> list[dict[str, Any]]:
    intake = _intake(request)
    async with intake.pool.acquire() as conn:
        return await list_conversations(conn, filters)


@router.get("/conversations/{conversation_id}", summary="One conversation; quotes opened for "
            "admins and the listener who logged it, withheld (null) for everyone else",
            responses={404: {}})
async def get_one_conversation(conversation_id: UUID, request: Request, caller: Reader) -> Any:
    intake = _intake(request)

    def may_open_quotes(listener_id: str) -> bool:
        return caller.role is Role.ADMIN or (
            caller.role is Role.COMMUNITY_LISTENER and caller.subject == listener_id)

    async with intake.pool.acquire() as conn:
        found = await get_conversation(conn, intake.vault, conversation_id,
                                       may_open_quotes=may_open_quotes)
    if found is None:
        return problem_response(404, "not_found", [("conversation_id", "no such conversation")])
    return found


@router.post("/participants/{participant_id}/consent", summary="Change re-contact consent",
             responses={400: {}, 404: {}, 409: {}, 413: {}, 422: {}})
async def post_consent(participant_id: ParticipantPath, cmd: ChangeConsent, request: Request,
                       caller: Logger) -> JSONResponse:
    caller.must_be("actor_id", cmd.actor_id)
    try:
        return _accepted(
            await _intake(request).change_consent(participant_id, cmd, _context(request)), 200)
    except Rejected as exc:
        return _rejected(exc)


@router.post("/participants/{participant_id}/erasure", summary="Erase a participant (forget)",
             responses={400: {}, 404: {}, 409: {}, 413: {}, 422: {}})
async def post_erasure(participant_id: ParticipantPath, cmd: EraseParticipant, request: Request,
                       caller: Logger) -> JSONResponse:
    caller.must_be("actor_id", cmd.actor_id)
    try:
        return _accepted(
            await _intake(request).erase_participant(participant_id, cmd, _context(request)), 200)
    except Rejected as exc:
        return _rejected(exc)


@router.get("/categories", summary="Enquiry categories in use (versioned)",
            dependencies=[Depends(_EVERYONE)])
async def get_categories(request: Request) -> Any:
    return _intake(request).categories.model_dump()


@router.get("/health/live", dependencies=[Depends(public("liveness probe"))])
async def live() -> dict[str, str]:
    return {"status": "ok"}


def include_routes(app: FastAPI) -> None:
    app.include_router(router)
