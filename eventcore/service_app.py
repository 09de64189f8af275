"""One service's FastAPI app, assembled the same way for every service.

The lifespan opens the service's runtime (pool, store, relay, consumers) and closes it; between
the two the service attaches what its routes use (`attach`: sets `app.state`, and may return an
async context manager for work that runs while the app does, such as feedback's scheduler).
Every app denies by default (routes declare their roles), answers errors as problem documents,
refuses bodies over `max_body_bytes`, and serves `/health/*` and `/metrics`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from eventcore.auth import GUARD, install_auth
from eventcore.http import BodySizeLimit, install_problem_handlers
from eventcore.ops import install_operations
from eventcore.runtime import ServiceRuntime
from eventcore.settings import CoreSettings

Attach = Callable[[FastAPI, ServiceRuntime], AbstractAsyncContextManager[Any] | None]

#: FastAPI's own telemetry (0.142+) off: each request's server span and latency are
#: `ops.HttpTelemetry`'s, on the service's providers. FastAPI's would add a second span, its
#: histograms and logs wherever a global provider is set (an `opentelemetry-instrument` run),
#: and checks the global providers on every request even where none is (docs/performance.md
#: finding 95).
NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def service_app(
    *, name: str, description: str, settings: CoreSettings, runtime: ServiceRuntime,
    max_body_bytes: int, routes: Callable[[FastAPI], None], attach: Attach,
) -> FastAPI:
    """The app of service `name`; `settings` carry its auth keys (see `install_auth`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            app.state.runtime = runtime
            running = attach(app, runtime)
            if running is None:
                yield
            else:
                async with running:
                    yield
        finally:
            await runtime.stop()

    app = FastAPI(title=f"Golden Thread — {name}", version="1.0.0", description=description,
                  lifespan=lifespan, dependencies=[GUARD], telemetry=NO_FASTAPI_TELEMETRY)
    install_auth(app, settings)
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    routes(app)
    install_operations(app, runtime)
    return app
