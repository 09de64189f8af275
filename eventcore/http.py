"""HTTP conventions every service shares: problem answers that name the field and never echo
input, a request body size limit, and the correlation id."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Problem(BaseModel):
    model_config = ConfigDict(frozen=True)
    field: str
    problem: str


class ProblemReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    error: str
    problems: list[Problem]


def problem_response(status: int, error: str, problems: Iterable[tuple[str, str]]) -> JSONResponse:
    report = ProblemReport(error=error, problems=[Problem(field=f, problem=p) for f, p in problems])
    return JSONResponse(report.model_dump(), status_code=status)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts[:1]
    return ".".join(parts) or "body"


_FIXED_MESSAGES = {
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "uuid_version": "must be a UUID of a supported version",
}


def validation_problems(errors: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """Only the location and pydantic's message: the input (maybe personal data) is dropped."""
    out: list[tuple[str, str]] = []
    for err in errors:
        if err.get("type") == "json_invalid":
            out.append(("body", "malformed JSON"))
        elif err.get("type") == "missing":
            out.append((_field(err.get("loc", ())), "required field is missing"))
        elif err.get("type") == "extra_forbidden":
            out.append((_field(err.get("loc", ())), "unknown field"))
        elif err.get("type") in _FIXED_MESSAGES:  # pydantic's own text quotes the input here
            out.append((_field(err.get("loc", ())), _FIXED_MESSAGES[str(err["type"])]))
        else:
            out.append((_field(err.get("loc", ())), str(err.get("msg", "invalid value"))))
    return out


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = validation_problems(exc.errors())
    malformed = any(f == "body" and p == "malformed JSON" for f, p in problems)
    return problem_response(400 if malformed else 422, "invalid_request", problems)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)


class BodySizeLimit:
    """Refuse bodies over `max_bytes` with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413, "too_large", [("body", f"too large: at most {self.max_bytes} bytes")]
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def correlation_id(request: Request) -> str:
    given = request.headers.get("x-correlation-id", "")
    if 1 <= len(given) <= 128 and given.isprintable():
        return given
    return str(uuid.uuid4())
