"""Serving a service app in-process over ASGI, lifespan included, on the real stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from eventcore.runtime import ServiceRuntime
from tests.conftest import bearer


@dataclass
class RunningApp:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    async def fetchval(self, sql: str, *args: Any) -> Any:
        assert self.runtime.pool is not None
        async with self.runtime.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        assert self.runtime.pool is not None
        async with self.runtime.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        assert self.runtime.pool is not None
        async with self.runtime.pool.acquire() as conn:
            return await conn.fetchrow(sql, *args)


@asynccontextmanager
async def serve(app: FastAPI, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """Start `app`'s lifespan and yield a client that calls it with an admin token."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}",
                                     headers=bearer()) as client:
            yield client
