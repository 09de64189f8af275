"""Wiring for the intake service: done once here, so tests can pass their own settings."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from contracts.topics import TOPIC_BY_TYPE
from eventcore.runtime import ServiceRuntime
from eventcore.service_app import service_app
from services.intake.adapters.vault import Vault, load_master_key
from services.intake.config import SCHEMA, SOURCE, IntakeSettings
from services.intake.domain.categories import load_categories
from services.intake.entrypoints import internal
from services.intake.entrypoints.http import include_routes
from services.intake.handlers import Intake

MIGRATIONS = Path(__file__).parent / "migrations"


def build_runtime(settings: IntakeSettings) -> ServiceRuntime:
    return ServiceRuntime(
        source=SOURCE, schema=SCHEMA, settings=settings, migrations=[MIGRATIONS],
        topics=TOPIC_BY_TYPE,
    )


def build_app(settings: IntakeSettings, runtime: ServiceRuntime | None = None) -> FastAPI:
    if settings.intake_vault_master_key is None:
        raise RuntimeError("GT_INTAKE_VAULT_MASTER_KEY: not set; the vault cannot seal personal data")
    master_key = load_master_key(settings.intake_vault_master_key.get_secret_value())
    categories = load_categories(settings.intake_categories_file)

    def attach(app: FastAPI, rt: ServiceRuntime) -> None:
        assert rt.pool is not None
        app.state.intake = Intake(rt.pool, rt.store, Vault(master_key), categories)

    def routes(app: FastAPI) -> None:
        include_routes(app)
        app.include_router(internal.router)

    return service_app(
        name="intake", settings=settings, runtime=runtime or build_runtime(settings),
        description="Community listeners log conversations; personal data is sealed in a vault.",
        max_body_bytes=settings.intake_max_body_bytes, routes=routes, attach=attach)
