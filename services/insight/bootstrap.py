"""Wiring for the insight service: done once here, so tests can pass their own settings."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from contracts.topics import TOPIC_BY_TYPE
from eventcore.runtime import ServiceRuntime
from eventcore.service_app import service_app
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
    def attach(app: FastAPI, rt: ServiceRuntime) -> None:
        assert rt.pool is not None
        app.state.insights = Insights(rt.pool, rt.store)

    return service_app(
        name="insight", settings=settings, runtime=runtime or build_runtime(settings),
        description="Lived-experience partners browse conversations and draft insights that "
        "cite them. Quotes stay sealed here; erased participants' conversations cannot be cited.",
        max_body_bytes=settings.insight_max_body_bytes, routes=include_routes, attach=attach)
