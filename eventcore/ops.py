"""Operations endpoints every service gets: /metrics, /health/ready, and HTTP tracing."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST

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


def install_operations(app: FastAPI, runtime: ServiceRuntime) -> None:
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=runtime.telemetry.tracer_provider,
        meter_provider=runtime.telemetry.meter_provider,
        excluded_urls="/metrics,/health/live,/health/ready",
    )

    @app.middleware("http")
    async def correlate_logs(request: Request, call_next: Any) -> Any:
        with log_context(correlation_id=correlation_id(request)):
            return await call_next(request)

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
