"""Operations endpoints every service gets: /metrics, /health/ready, and HTTP tracing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventcore.auth import public
from eventcore.http import scope_correlation_id
from eventcore.logs import log_context
from eventcore.runtime import ServiceRuntime

CHECK_TIMEOUT_S = 2.0
#: Probes and scraping: neither traced nor timed.
UNTRACED_PATHS = frozenset({"/metrics", "/health/live", "/health/ready"})
_TRACE_HEADERS = (b"traceparent", b"tracestate")


async def readiness(runtime: ServiceRuntime) -> dict[str, bool]:
    """Ready only when migrations are applied and the database and broker both answer."""
    return {
        "migrations": runtime.migrated,
        "database": await _database_answers(runtime),
        "broker": await _broker_answers(runtime),
    }


async def _database_answers(runtime: ServiceRuntime) -> bool:
    if runtime.pool is None:
        return False
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            async with runtime.pool.acquire() as conn:
                return bool(await conn.fetchval("SELECT true"))
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


async def _broker_answers(runtime: ServiceRuntime) -> bool:
    if runtime.producer is None:
        return False
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await runtime.producer.client.fetch_all_metadata()
        return True
    except Exception:  # noqa: BLE001
        return False


class CorrelateLogs:
    """Every log line of a request carries its correlation id. A plain ASGI middleware: the
    `@app.middleware("http")` kind runs the rest of the app in a task of its own and streams the
    response through memory channels, a cost paid on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with log_context(correlation_id=scope_correlation_id(scope)):
            await self.app(scope, receive, send)


class HttpTelemetry:
    """Each request's server span and its latency, and nothing else.

    The span (named `METHOD /route/{template}`, kind SERVER) continues a caller's `traceparent`
    and is current while the route runs, so the events it appends carry its trace (the root of a
    conversation's journey); `http.server.duration` (ms, by method, status and route template)
    feeds /metrics. OpenTelemetry's FastAPI instrumentation did the same at about a quarter of
    intake's CPU per conversation (docs/performance.md finding 5): a child span per ASGI message,
    three more histograms and an up-down counter, and attributes computed twice per request.
    """

    def __init__(self, app: ASGIApp, tracer: trace.Tracer, meter: Meter) -> None:
        self.app, self.tracer = app, tracer
        self.duration = meter.create_histogram(
            "http.server.duration", unit="ms",
            description="Measures the duration of inbound HTTP requests.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        carrier = {k.decode("latin-1"): v.decode("latin-1")
                   for k, v in scope["headers"] if k in _TRACE_HEADERS}
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        began = time.perf_counter()
        with self.tracer.start_as_current_span(
            method, context=extract(carrier) if carrier else None, kind=SpanKind.SERVER,
            attributes={"http.method": method},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                elapsed_ms = (time.perf_counter() - began) * 1000
                route = getattr(scope.get("route"), "path_format", None)
                labels: dict[str, str | int] = {"http.method": method, "http.status_code": status}
                if route:
                    labels["http.target"] = route
                    span.update_name(f"{method} {route}")
                    span.set_attributes({"http.route": route, "http.status_code": status})
                else:
                    span.set_attribute("http.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                self.duration.record(elapsed_ms, labels)


def install_operations(app: FastAPI, runtime: ServiceRuntime) -> None:
    app.add_middleware(CorrelateLogs)
    app.add_middleware(HttpTelemetry, tracer=runtime.telemetry.tracer,  # outermost: logs inside
                       meter=runtime.telemetry.meter_provider.get_meter("golden_thread.http"))

    # Open on purpose: orchestrators probe readiness and Prometheus scrapes without tokens; they
    # say nothing about people (counts and booleans only). Keep them off the public ingress.
    @app.get("/health/ready", tags=["operations"], responses={503: {}},
             dependencies=[Depends(public("readiness probe for the orchestrator"))])
    async def ready(request: Request) -> Any:
        checks = await readiness(runtime)
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response,
             dependencies=[Depends(public("Prometheus scraping; aggregate numbers only"))])
    async def metrics() -> Response:
        return Response(runtime.telemetry.prometheus_text(), media_type=CONTENT_TYPE_LATEST)
