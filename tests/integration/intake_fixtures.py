"""An intake service on the real stack, served in-process over ASGI (lifespan included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from eventcore.embedded import StackEndpoints
from eventcore.runtime import ServiceRuntime
from services.intake.adapters.vault import new_master_key
from services.intake.bootstrap import build_app
from services.intake.config import IntakeSettings
from tests.conftest import bearer, core_values, create_database


@dataclass
class RunningIntake:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IntakeSettings

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime


@asynccontextmanager
async def running_intake(endpoints: StackEndpoints, **overrides: object) -> AsyncIterator[RunningIntake]:
    values = core_values(endpoints, await create_database(endpoints))
    values.update(intake_vault_master_key=new_master_key(), **overrides)
    settings = IntakeSettings(**values)  # type: ignore[arg-type]
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake",
                                     headers=bearer()) as client:
            yield RunningIntake(app, client, settings)
