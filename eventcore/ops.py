"""Operations endpoints every service gets: /metrics, /health/ready, and HTTP tracing."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Receive, Scope, Send

from eventcore.auth import public
from eventcore.http import correlation_id
from eventcore.logs import log_context
from eventcore.runtime import ServiceRuntime

CHECK_TIMEOUT_S = 2.0


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
        with log_context(correlation_id=correlation_id(Request(scope))):
            await self.app(scope, receive, send)


def install_operations(app: FastAPI, runtime: ServiceRuntime) -> None:
    # The request's server span (the root of a conversation's trace) and the HTTP latency
    # histograms; no child span per ASGI receive/send message (two to four per request, which
    # said nothing the server span does not).
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=runtime.telemetry.tracer_provider,
        meter_provider=runtime.telemetry.meter_provider,
        excluded_urls="/metrics,/health/live,/health/ready",
        exclude_spans=["receive", "send"],
    )
    app.add_middleware(CorrelateLogs)

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
