"""Wiring for the priority service: done once here, so tests can pass their own settings."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from contracts.topics import ACTIONS, INSIGHTS, TOPIC_BY_TYPE
from eventcore.runtime import ServiceRuntime, Subscription
from eventcore.service_app import service_app
from services.priority.config import CONSUMER, SCHEMA, SOURCE, PrioritySettings
from services.priority.entrypoints.http import include_routes
from services.priority.handlers.actions import Actions
from services.priority.handlers.policies import (
    when_action_taken_elsewhere_record_it,
    when_insight_drafted_record_insight,
    when_insights_drafted_record_them,
)
from services.priority.handlers.sessions import Sessions

MIGRATIONS = Path(__file__).parent / "migrations"


def build_runtime(settings: PrioritySettings) -> ServiceRuntime:
    subscription = Subscription(
        consumer_name=CONSUMER,
        topics=(INSIGHTS, ACTIONS),
        handlers={
            "InsightDrafted": when_insight_drafted_record_insight,
            "ActionTaken": when_action_taken_elsewhere_record_it,
        },
        batch_handlers={"InsightDrafted": when_insights_drafted_record_them},
    )
    return ServiceRuntime(
        source=SOURCE, schema=SCHEMA, settings=settings, migrations=[MIGRATIONS],
        topics=TOPIC_BY_TYPE, subscriptions=[subscription],
    )


def build_app(settings: PrioritySettings, runtime: ServiceRuntime | None = None) -> FastAPI:
    def attach(app: FastAPI, rt: ServiceRuntime) -> None:
        assert rt.pool is not None
        app.state.sessions = Sessions(rt.pool, rt.store, settings.default_rule(),
                                      settings.priority_min_quorum)
        app.state.actions = Actions(rt.pool, rt.store)

    return service_app(
        name="priority", settings=settings, runtime=runtime or build_runtime(settings),
        description="Lived-experience partners agree priorities from insights by an explicit "
        "rule; services record the actions they take against them.",
        max_body_bytes=settings.priority_max_body_bytes, routes=include_routes, attach=attach)
