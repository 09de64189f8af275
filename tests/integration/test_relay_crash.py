"""Killing the outbox relay (kill -9) and restarting it loses nothing and repeats nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from eventcore.db import create_pool
from eventcore.embedded import StackEndpoints
from eventcore.store import EventStore
from tests.integration.relay_main import MAX_IN_FLIGHT
from tests.integration.relay_reader import read_published
from tests.integration.store_kit import SOURCE, consent_draft, core_schema, new_subject

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def start_relay(database_url: str, schema: str, endpoints: StackEndpoints) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.relay_main", database_url, schema,
         endpoints.kafka_bootstrap_servers, "5"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


async def published_cursor(pool: object, schema: str) -> int:
    async with pool.acquire() as conn:  # type: ignore[attr-defined]
        value = await conn.fetchval(
            "SELECT published_sequence FROM outbox_cursor WHERE relay = $1", f"{schema}-relay")
    return int(value or 0)


async def wait_for_cursor(pool: object, schema: str, target: int, timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await published_cursor(pool, schema) < target:
        assert asyncio.get_running_loop().time() < deadline, "relay did not catch up"
        await asyncio.sleep(0.05)


async def test_relay_killed_between_commit_and_publish_publishes_each_event_once_in_order(
    endpoints: StackEndpoints, database_url: str
) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema)
    store, subject = EventStore(SOURCE), new_subject()
    version = 0

    async def append(n: int) -> None:
        nonlocal version
        async with pool.acquire() as conn:
            for _ in range(n):
                version += 1
                await store.append(conn, [consent_draft(subject, version)])

    relay = start_relay(database_url, schema, endpoints)
    try:
        await append(12)
        await wait_for_cursor(pool, schema, 12)
        relay.send_signal(signal.SIGSTOP)        # frozen: it sees nothing of what follows
        await append(9)                          # committed, not yet published
        relay.send_signal(signal.SIGKILL)
        relay.wait(10)
        assert await published_cursor(pool, schema) == 12

        relay = start_relay(database_url, schema, endpoints)
        await append(4)
        await wait_for_cursor(pool, schema, 25)
    finally:
        relay.kill()
        relay.wait(10)
    async with pool.acquire() as conn:
        stored = await store.read_after(conn, 0, 1000)
    await pool.close()

    published = await read_published(endpoints, {e.event_id for e in stored})
    assert Counter(e.sequence for e in published) == Counter(range(1, 26)), "each exactly once"
    assert [e.sequence for e in published] == list(range(1, 26)), "in sequence order"


async def test_relay_killed_at_random_moments_under_load_loses_nothing(
    endpoints: StackEndpoints, database_url: str
) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema)
    store, subject = EventStore(SOURCE), new_subject()
    relay = start_relay(database_url, schema, endpoints)
    try:
        for round_ in range(4):
            async with pool.acquire() as conn:
                for v in range(round_ * 15 + 1, round_ * 15 + 16):
                    await store.append(conn, [consent_draft(subject, v)])
                    if v % 7 == 0:
                        relay.kill()   # wherever it is: reading, sending, or marking
                        relay.wait(10)
                        relay = start_relay(database_url, schema, endpoints)
        await wait_for_cursor(pool, schema, 60)
    finally:
        relay.kill()
        relay.wait(10)
    async with pool.acquire() as conn:
        stored = await store.read_after(conn, 0, 1000)
    await pool.close()
    published = await read_published(endpoints, {e.event_id for e in stored})
    seen = Counter(e.sequence for e in published)
    assert set(seen) == set(range(1, 61)), "nothing lost"
    # A kill after the broker's acks but before the cursor moved re-sends the batches (5 each)
    # not yet marked, at most MAX_IN_FLIGHT of them; consumers' inboxes absorb those repeats.
    assert sum(seen.values()) - 60 <= 5 * MAX_IN_FLIGHT * 8
    first_copies = list(dict.fromkeys(e.sequence for e in published))
    assert first_copies == sorted(first_copies), "first publication follows sequence order"
