"""Wiring for the insight service: done once here, so tests can pass their own settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from contracts.topics import TOPIC_BY_TYPE
from eventcore.auth import GUARD, install_auth
from eventcore.http import BodySizeLimit, install_problem_handlers
from eventcore.ops import install_operations
from eventcore.runtime import ServiceRuntime
from services.insight.config import SCHEMA, SOURCE, InsightSettings
from services.insight.entrypoints.http import include_routes
from services.insight.handlers import Insights
from services.insight.policies import subscription

MIGRATIONS = Path(__file__).parent / "migrations"


def build_runtime(settings: InsightSettings) -> ServiceRuntime:
    return ServiceRuntime(
        source=SOURCE, schema=SCHEMA, settings=settings, migrations=[MIGRATIONS],
        topics=TOPIC_BY_TYPE, subscriptions=[subscription(settings.insight_trusted_sources)],
    )


def build_app(settings: InsightSettings, runtime: ServiceRuntime | None = None) -> FastAPI:
    rt = runtime or build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        assert rt.pool is not None
        app.state.runtime = rt
        app.state.insights = Insights(rt.pool, rt.store)
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(
        title="Golden Thread — insight",
        version="1.0.0",
        description="Lived-experience partners browse conversations and draft insights that "
        "cite them. Quotes stay sealed here; erased participants' conversations cannot be cited.",
        lifespan=lifespan,
        dependencies=[GUARD],
    )
    install_auth(app, settings)
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.insight_max_body_bytes)
    include_routes(app)
    install_operations(app, rt)
    return app
