"""An in-memory broker that restarts loses its topics: the relay notices and re-publishes."""

from __future__ import annotations

import asyncio

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


async def test_relay_republishes_from_its_store_after_the_broker_lost_history() -> None:
    # Its own stack: restarting the session's broker would disturb every other test.
    stack = EmbeddedStack(CoreSettings(), topics=ALL_TOPICS)
    async with stack as endpoints:
        schema = await core_schema(endpoints.database_url)
        pool = await create_pool(endpoints.database_url, schema)
        store, subject = EventStore(SOURCE), new_subject()
        producer = make_producer(CoreSettings(kafka_enable_idempotence=False),
                                 endpoints.kafka_bootstrap_servers, "restart-test")
        await producer.start()
        relay = OutboxRelay(database_url=endpoints.database_url, pool=pool, store=store,
                            producer=producer, topics=TOPICS, poll_interval_s=0.05,
                            bootstrap_servers=endpoints.kafka_bootstrap_servers,
                            broker_check_interval_s=0.2, name=f"{schema}-relay")
        task = asyncio.create_task(relay.run())
        try:
            async with pool.acquire() as conn:
                for version in range(1, 11):
                    await store.append(conn, [consent_draft(subject, version)])
                stored = await store.read_after(conn, 0, 100)
            ids = {e.event_id for e in stored}
            assert len(await read_published(endpoints, ids, settle_s=0.1)) == 10

            await stack.restart_broker()
            republished = await read_published(endpoints, ids, settle_s=1.0, timeout_s=60)
            assert sorted(e.sequence for e in republished) == list(range(1, 11))
            assert relay.republished_from_store == 1
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await producer.stop()
            await pool.close()


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
    schema = await core_schema(endpoints.database_url)
    pool = await create_pool(endpoints.database_url, schema)
    store, subject = EventStore(SOURCE), new_subject()
    producer = make_producer(CoreSettings(kafka_enable_idempotence=False),
                             endpoints.kafka_bootstrap_servers, "check-test")
    await producer.start()
    relay = OutboxRelay(database_url=endpoints.database_url, pool=pool, store=store,
                        producer=producer, topics=TOPICS, poll_interval_s=5.0,
                        bootstrap_servers=endpoints.kafka_bootstrap_servers,
                        broker_check_interval_s=0.05, name=f"{schema}-relay")
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(checking.wait(), 30)  # a check is under way, and stays so
        async with pool.acquire() as conn:
            for version in range(1, 4):
                await store.append(conn, [consent_draft(subject, version)])
            ids = {e.event_id for e in await store.read_after(conn, 0, 100)}
        published = await read_published(endpoints, ids, settle_s=0.1, timeout_s=20)
        assert {e.id for e in published} == ids
        for _ in range(100):  # the cursor moves a round trip after the broker's ack
            if relay.published_sequence == 3:
                break
            await asyncio.sleep(0.05)
        assert not release.is_set() and relay.published_sequence == 3
    finally:
        release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
        await pool.close()


async def test_a_notify_that_lands_while_the_last_read_comes_back_empty_is_not_lost(
    endpoints: StackEndpoints,
) -> None:
    """An event committed just as the relay's read found nothing: its NOTIFY must end the wait
    at once, not after a whole poll interval (here 30 s)."""
    schema = await core_schema(endpoints.database_url)
    pool = await create_pool(endpoints.database_url, schema)
    store, subject = EventStore(SOURCE), new_subject()
    producer = make_producer(CoreSettings(kafka_enable_idempotence=False),
                             endpoints.kafka_bootstrap_servers, "notify-test")
    await producer.start()
    relay = OutboxRelay(database_url=endpoints.database_url, pool=pool, store=store,
                        producer=producer, topics=TOPICS, poll_interval_s=30.0, name=f"{schema}-relay")
    read_empty = relay.publish_pending
    raced = asyncio.Event()

    async def racing(conn: asyncpg.Connection) -> int:
        published = await read_empty(conn)
        if published == 0 and not raced.is_set():  # the race: a commit right after the read
            raced.set()
            async with pool.acquire() as other:
                await store.append(other, [consent_draft(subject, 1)])
            await asyncio.sleep(0.3)  # its NOTIFY reaches the relay's listener meanwhile
        return published

    relay.publish_pending = racing  # type: ignore[method-assign]
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(raced.wait(), 30)
        for _ in range(100):  # 5 s, far below the 30 s poll interval
            if relay.published_sequence == 1:
                break
            await asyncio.sleep(0.05)
        assert relay.published_sequence == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
        await pool.close()
