"""The database going away under a running handler is a wait, never a strike against the message.

A fast shutdown (a restart) ends every running statement with admin_shutdown (57P01), which
asyncpg raises as AdminShutdownError, a class the consumer does not count as "database away".
It holds only because the inbox transaction's rollback then fails on the dead connection and
surfaces InterfaceError, which it does. This pins that down: even with
GT_CONSUMER_MAX_ATTEMPTS=1 a good message is retried, not dead-lettered.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import asyncpg
import pytest

from eventcore.consumer import IdempotentConsumer
from eventcore.db import create_pool, migrate
from eventcore.deadletter import DeadLetters, IncomingMessage
from eventcore.messaging import envelope_message
from eventcore.store import EventStore
from golden_thread.faults.lab import Lab
from tests.integration.store_kit import SOURCE, consent_draft, new_subject

pytestmark = pytest.mark.e2e


class Recorded(DeadLetters):
    def __init__(self) -> None:  # no producer: the reasons are kept here
        self.reasons: list[str] = []

    async def send(self, message: IncomingMessage, *, reason: str, attempts: int) -> None:
        self.reasons.append(reason)


async def _fresh_database(lab: Lab) -> str:
    name = f"gt_{secrets.token_hex(6)}"
    await lab.fetch(f"CREATE DATABASE {name}")
    return lab.env["GT_DATABASE_URL"].rpartition("/")[0] + f"/{name}"


async def test_a_restart_under_a_running_statement_does_not_dead_letter_the_message(
    lab: Lab,
) -> None:
    url = await _fresh_database(lab)
    schema = f"s_{secrets.token_hex(4)}"
    await migrate(url, schema, [], source=SOURCE)
    pool = await create_pool(url, schema)
    try:
        async with pool.acquire() as conn:
            [event] = await EventStore(SOURCE).append(conn, [consent_draft(new_subject(), 1)])
        out = envelope_message("intake.participants.v1", event.envelope)
        message = IncomingMessage(out.topic, 0, 0, out.key, out.value, out.headers)
        calls: list[int] = []

        async def handler(conn: asyncpg.Connection, _: Any) -> None:
            calls.append(conn.get_server_pid())
            if len(calls) == 1:  # the first run is cut off by the shutdown, mid-statement
                await conn.execute("SELECT pg_sleep(30)")

        dead = Recorded()
        consumer = IdempotentConsumer(name="c", pool=pool, handlers={"ConsentChanged": handler},
                                      dead_letters=dead, max_attempts=1, max_backoff_s=0.2)
        running = asyncio.create_task(consumer.process(message))
        while not calls:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        async with pool.acquire() as admin:  # what a fast shutdown does to each backend
            await admin.execute("SELECT pg_terminate_backend($1)", calls[0])
        outcome = await asyncio.wait_for(running, 30)
    finally:
        await pool.close()
    assert dead.reasons == [], "a good message was dead-lettered because the database went away"
    assert outcome.status == "applied" and len(calls) == 2
