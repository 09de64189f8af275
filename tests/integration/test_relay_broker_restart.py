"""An in-memory broker that restarts loses its topics: the relay notices and re-publishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pytest

from contracts.topics import ALL_TOPICS
from eventcore.brokerwatch import BrokerWatch
from eventcore.db import create_pool
from eventcore.embedded import EmbeddedStack, StackEndpoints
from eventcore.messaging import make_producer
from eventcore.relay import OutboxRelay
from eventcore.settings import CoreSettings
from eventcore.store import EventStore
from tests.integration.relay_reader import read_published
from tests.integration.store_kit import SOURCE, TOPICS, consent_draft, core_schema, new_subject

pytestmark = pytest.mark.integration


@dataclass
class Rig:
    """A relay over a fresh store schema on `endpoints`, not yet running."""

    pool: asyncpg.Pool
    store: EventStore
    relay: OutboxRelay
    subject: str
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.relay.run())

    async def append(self, *versions: int) -> set[UUID]:
        """Append the subject's consent changes at these versions; every id in the store."""
        async with self.pool.acquire() as conn:
            for version in versions:
                await self.store.append(conn, [consent_draft(self.subject, version)])
            return {e.event_id for e in await self.store.read_after(conn, 0, 100)}

    async def published_up_to(self, sequence: int) -> bool:
        for _ in range(100):  # the cursor moves a round trip after the broker's ack
            if self.relay.published_sequence == sequence:
                return True
            await asyncio.sleep(0.05)
        return False


@asynccontextmanager
async def relay_rig(endpoints: StackEndpoints, *, poll_interval_s: float,
                    broker_check_interval_s: float | None = None) -> AsyncIterator[Rig]:
    schema = await core_schema(endpoints.database_url)
    pool = await create_pool(endpoints.database_url, schema)
    producer = make_producer(CoreSettings(kafka_enable_idempotence=False),
                             endpoints.kafka_bootstrap_servers, f"{schema}-test")
    await producer.start()
    checks = ({} if broker_check_interval_s is None else
              {"bootstrap_servers": endpoints.kafka_bootstrap_servers,
               "broker_check_interval_s": broker_check_interval_s})
    store = EventStore(SOURCE)
    relay = OutboxRelay(database_url=endpoints.database_url, pool=pool, store=store,
                        producer=producer, topics=TOPICS, poll_interval_s=poll_interval_s,
                        name=f"{schema}-relay", **checks)  # type: ignore[arg-type]
    rig = Rig(pool, store, relay, new_subject())
    try:
        yield rig
    finally:
        if rig.task is not None:
            rig.task.cancel()
            await asyncio.gather(rig.task, return_exceptions=True)
        await producer.stop()
        await pool.close()


async def test_relay_republishes_from_its_store_after_the_broker_lost_history() -> None:
    # Its own stack: restarting the session's broker would disturb every other test.
    stack = EmbeddedStack(CoreSettings(), topics=ALL_TOPICS)
    async with stack as endpoints, relay_rig(endpoints, poll_interval_s=0.05,
                                             broker_check_interval_s=0.2) as rig:
        rig.start()
        ids = await rig.append(*range(1, 11))
        assert len(await read_published(endpoints, ids, settle_s=0.1)) == 10

        await stack.restart_broker()
        republished = await read_published(endpoints, ids, settle_s=1.0, timeout_s=60)
        assert sorted(e.sequence for e in republished) == list(range(1, 11))
        assert rig.relay.republished_from_store == 1


async def test_publishing_goes_on_while_the_broker_check_runs(
    endpoints: StackEndpoints, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check reads back from the broker with a client of its own; events committed while it
    runs are published at once, not after it."""
    checking, release = asyncio.Event(), asyncio.Event()

    async def slow_check(self: BrokerWatch) -> bool:
        checking.set()
        await release.wait()
        return False

    monkeypatch.setattr(BrokerWatch, "history_lost", slow_check)
    async with relay_rig(endpoints, poll_interval_s=5.0, broker_check_interval_s=0.05) as rig:
        rig.start()
        try:
            await asyncio.wait_for(checking.wait(), 30)  # a check is under way, and stays so
            ids = await rig.append(1, 2, 3)
            published = await read_published(endpoints, ids, settle_s=0.1, timeout_s=20)
            assert {e.id for e in published} == ids
            assert await rig.published_up_to(3) and not release.is_set()
        finally:
            release.set()


async def test_a_notify_that_lands_while_the_last_read_comes_back_empty_is_not_lost(
    endpoints: StackEndpoints,
) -> None:
    """An event committed just as the relay's read found nothing: its NOTIFY must end the wait
    at once, not after a whole poll interval (here 30 s)."""
    async with relay_rig(endpoints, poll_interval_s=30.0) as rig:
        read_empty = rig.relay.publish_pending
        raced = asyncio.Event()

        async def racing(conn: asyncpg.Connection) -> int:
            published = await read_empty(conn)
            if published == 0 and not raced.is_set():  # the race: a commit right after the read
                raced.set()
                await rig.append(1)
                await asyncio.sleep(0.3)  # its NOTIFY reaches the relay's listener meanwhile
            return published

        rig.relay.publish_pending = racing  # type: ignore[method-assign]
        rig.start()
        await asyncio.wait_for(raced.wait(), 30)
        assert await rig.published_up_to(1)  # within 5 s, far below the 30 s poll interval
