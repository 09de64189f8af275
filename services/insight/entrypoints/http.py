"""Insight's HTTP API (FastAPI; OpenAPI at /openapi.json, docs at /docs)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from eventcore.auth import Principal, Role, allow, public
from eventcore.http import ProblemReport, correlation_id, problem_response
from services.insight.domain.commands import DraftInsight, ReviseInsight
from services.insight.handlers import Accepted, Insights, Rejected, RequestContext
from services.insight.views.conversations import (
    ConversationFilter,
    ConversationPage,
    ConversationView,
    filter_problems,
    get_conversation,
    list_conversations,
)
from services.insight.views.insights import (
    InsightDetail,
    InsightFilter,
    InsightPage,
    get_insight,
    list_insights,
)


class InsightAccepted(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    revision: int
    event_id: UUID
    sequence: int


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemReport} for status in (400, 404, 409, 413, 422)}


def _insights(request: Request) -> Insights:
    insights: Insights = request.app.state.insights
    return insights


def _context(request: Request) -> RequestContext:
    return RequestContext.of(correlation_id(request), request.headers.get("traceparent"))


def _accepted(result: Accepted) -> JSONResponse:
    body = InsightAccepted(id=result.insight_id, revision=result.revision,
                           event_id=result.event_id, sequence=result.sequence)
    return JSONResponse(body.model_dump(mode="json"), status_code=201,
                        headers={"location": f"/insights/{result.insight_id}"})


def _rejected(exc: Rejected) -> JSONResponse:
    return problem_response(exc.status, "rejected", [(p.field, p.problem) for p in exc.problems])


def _not_found(field: str, what: str) -> JSONResponse:
    return problem_response(404, "not_found", [(field, f"no such {what}")])


router = APIRouter()
# Partners browse and draft; service leads also read insights (what priorities rest on); auditors
# read everything; only partners (and admins) write.
_BROWSERS = Depends(allow(Role.LIVED_EXPERIENCE_PARTNER, Role.AUDITOR, Role.ADMIN))
_INSIGHT_READERS = Depends(allow(Role.LIVED_EXPERIENCE_PARTNER, Role.SERVICE_LEAD, Role.AUDITOR,
                                 Role.ADMIN))
Drafter = Annotated[Principal, Depends(allow(Role.LIVED_EXPERIENCE_PARTNER, Role.ADMIN))]


@router.get("/conversations", summary="Browse conversations by category, place, date and "
            "equity group", response_model=ConversationPage, responses=_PROBLEMS,
            dependencies=[_BROWSERS])
async def get_conversations(
    request: Request, filters: Annotated[ConversationFilter, Query()]
) -> ConversationPage | JSONResponse:
    if problems := filter_problems(filters):
        return problem_response(422, "invalid_request", problems)
    async with _insights(request).pool.acquire() as conn:
        return await list_conversations(conn, filters)


@router.get("/conversations/{conversation_id}", summary="One conversation (quotes stay sealed)",
            response_model=ConversationView, responses=_PROBLEMS, dependencies=[_BROWSERS])
async def get_one_conversation(
    conversation_id: UUID, request: Request
) -> ConversationView | JSONResponse:
    async with _insights(request).pool.acquire() as conn:
        found = await get_conversation(conn, conversation_id)
    return found if found is not None else _not_found("conversation_id", "conversation")


@router.post("/insights", status_code=201, summary="Draft an insight from conversations",
             response_model=InsightAccepted, responses=_PROBLEMS)
async def post_insight(cmd: DraftInsight, request: Request, caller: Drafter) -> JSONResponse:
    caller.must_be("partner_id", cmd.partner_id)
    try:
        return _accepted(await _insights(request).draft(cmd, _context(request)))
    except Rejected as exc:
        return _rejected(exc)


@router.post("/insights/{insight_id}/revisions", status_code=201, summary="Revise an insight "
             "(a new revision; history kept)", response_model=InsightAccepted, responses=_PROBLEMS)
async def post_revision(insight_id: UUID, cmd: ReviseInsight, request: Request,
                        caller: Drafter) -> JSONResponse:
    caller.must_be("partner_id", cmd.partner_id)
    try:
        return _accepted(await _insights(request).revise(insight_id, cmd, _context(request)))
    except Rejected as exc:
        return _rejected(exc)


@router.get("/insights", summary="Insights (latest revisions), by category",
            response_model=InsightPage, responses=_PROBLEMS, dependencies=[_INSIGHT_READERS])
async def get_insights(
    request: Request, filters: Annotated[InsightFilter, Query()]
) -> InsightPage:
    async with _insights(request).pool.acquire() as conn:
        return await list_insights(conn, filters)


@router.get("/insights/{insight_id}", summary="One insight with every revision",
            response_model=InsightDetail, responses=_PROBLEMS, dependencies=[_INSIGHT_READERS])
async def get_one_insight(insight_id: UUID, request: Request) -> InsightDetail | JSONResponse:
    async with _insights(request).pool.acquire() as conn:
        found = await get_insight(conn, insight_id)
    return found if found is not None else _not_found("insight_id", "insight")


@router.get("/health/live", summary="The process is up",
            dependencies=[Depends(public("liveness probe"))])
async def live() -> dict[str, str]:
    return {"status": "ok"}


def include_routes(app: FastAPI) -> None:
    app.include_router(router)
