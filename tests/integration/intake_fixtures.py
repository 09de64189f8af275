"""An intake service on the real stack, served in-process over ASGI (lifespan included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from eventcore.embedded import StackEndpoints
from services.intake.adapters.vault import new_master_key
from services.intake.bootstrap import build_app
from services.intake.config import IntakeSettings
from tests.conftest import core_values, create_database
from tests.integration.in_process import RunningApp, serve


@dataclass
class RunningIntake(RunningApp):
    settings: IntakeSettings


@asynccontextmanager
async def running_intake(endpoints: StackEndpoints, **overrides: object) -> AsyncIterator[RunningIntake]:
    values = core_values(endpoints, await create_database(endpoints))
    values.update(intake_vault_master_key=new_master_key(), **overrides)
    settings = IntakeSettings(**values)  # type: ignore[arg-type]
    app = build_app(settings)
    async with serve(app, "intake") as client:
        yield RunningIntake(app, client, settings)
