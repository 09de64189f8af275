"""Shared fixtures: one embedded stack (real broker + real PostgreSQL) for the whole session.

`GT_INFRA=testcontainers` makes the same fixtures use testcontainers' Apache Kafka and
PostgreSQL where a Docker engine exists; GT_KAFKA_BOOTSTRAP_SERVERS / GT_DATABASE_URL point
them at servers you run yourself.
"""

from __future__ import annotations

import os

# Every canonical body written in one pass is checked against pydantic's dump
# (contracts.canonical), here and in the services the tests start: before `contracts` is imported.
os.environ.setdefault("GT_CANONICAL_CROSS_CHECK", "1")

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from contracts import ActorRole
from contracts.topics import ALL_TOPICS
from eventcore.embedded import EmbeddedStack, StackEndpoints
from eventcore.settings import CoreSettings
from eventcore.tokens import mint_token
from tests.hang_dump import HangWatch

#: The key every in-process service verifies bearer tokens with in tests.
TEST_JWT_SECRET = "test-only-" + secrets.token_urlsafe(32)


def bearer(role: ActorRole | str = ActorRole.ADMIN, subject: str = "admin-tests",
           ttl_s: int = 3600) -> dict[str, str]:
    """An authorization header for `subject` in `role` (tests default to an admin)."""
    return {"authorization": f"Bearer {mint_token(TEST_JWT_SECRET, role, subject, ttl_s)}"}


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[EmbeddedStack]:
    running = EmbeddedStack(CoreSettings(), topics=ALL_TOPICS)
    async with running:
        yield running


@pytest.fixture(scope="session")
def endpoints(stack: EmbeddedStack) -> StackEndpoints:
    return stack.endpoints


async def create_database(endpoints: StackEndpoints) -> str:
    """A fresh database on the shared server, so tests do not see each other's state."""
    return await endpoints.new_database("gt")


def core_values(endpoints: StackEndpoints, database_url: str) -> dict[str, object]:
    return {
        "kafka_bootstrap_servers": endpoints.kafka_bootstrap_servers,
        "database_url": database_url,
        "kafka_enable_idempotence": endpoints.kafka_enable_idempotence,
        "kafka_fetch_max_wait_ms": endpoints.kafka_fetch_max_wait_ms,
        "relay_poll_interval_s": 0.2,
        # A consumer group whose last member vanished frees up after this (see settings).
        "kafka_session_timeout_ms": 3_000,
        "kafka_heartbeat_interval_ms": 500,
        "auth_jwt_secret": TEST_JWT_SECRET,
    }


@pytest.fixture
async def database_url(endpoints: StackEndpoints) -> str:
    return await create_database(endpoints)


@pytest.fixture
def core_settings(endpoints: StackEndpoints, database_url: str) -> CoreSettings:
    return CoreSettings(**core_values(endpoints, database_url))  # type: ignore[arg-type]


# A test that runs long leaves a dump of where every asyncio task waits (tests/hang_dump.py).
_HANG_WATCH = HangWatch()


@pytest.fixture(scope="session", autouse=True)
async def _hang_watch_loop() -> AsyncIterator[None]:
    _HANG_WATCH.loop = asyncio.get_running_loop()
    yield
    _HANG_WATCH.loop = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    _HANG_WATCH.arm(item.nodeid)
    try:
        yield
    finally:
        _HANG_WATCH.disarm()
