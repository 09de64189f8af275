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
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.problems import dotted


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
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts[:1]
    # An unknown key is input: named only when it is a plain identifier (as in contracts).
    return dotted(parts)


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


#: The framework's own refusals (no such route, wrong method, a body it cannot read), as problems.
_FRAMEWORK_PROBLEMS = {
    400: ("invalid_request", "body", "malformed JSON"),
    404: ("not_found", "path", "no such resource"),
    405: ("method_not_allowed", "method", "not allowed on this resource"),
}


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    """Answered in the problem format too; the framework's detail text is not repeated."""
    assert isinstance(exc, HTTPException)
    error, field, problem = _FRAMEWORK_PROBLEMS.get(
        exc.status_code, ("refused", "request", "the request was refused"))
    answer = problem_response(exc.status_code, error, [(field, problem)])
    answer.headers.update(exc.headers or {})  # e.g. Allow on a 405
    return answer


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)


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
        # Read (at most max_bytes of) the body before the app sees it: an error raised while the
        # app reads would be caught by the framework and answered as a malformed body (400).
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413, "too_large", [("body", f"too large: at most {self.max_bytes} bytes")]
        )
        await response(scope, receive, send)


def correlation_id(request: Request) -> str:
    """The caller's `x-correlation-id` when it is sane, else a new one; the same for a request."""
    return scope_correlation_id(request.scope)


def scope_correlation_id(scope: Scope) -> str:
    """`correlation_id` read from the ASGI scope itself (kept in its `state`, as
    `request.state.correlation_id`), so a middleware needs no `Request` for it."""
    state = scope.setdefault("state", {})
    known = state.get("correlation_id")
    if isinstance(known, str):
        return known
    given = ""
    for name, value in scope.get("headers", ()):
        if name == b"x-correlation-id":  # the first, as `request.headers.get` answers
            given = value.decode("latin-1")
            break
    chosen = given if 1 <= len(given) <= 128 and given.isprintable() else str(uuid.uuid4())
    state["correlation_id"] = chosen
    return chosen
