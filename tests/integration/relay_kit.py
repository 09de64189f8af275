"""A relay over a fresh store schema, for the relay's integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer

from eventcore.db import create_pool
from eventcore.embedded import StackEndpoints
from eventcore.messaging import make_producer
from eventcore.relay import OutboxRelay
from eventcore.settings import CoreSettings
from eventcore.store import EventStore
from tests.integration.store_kit import SOURCE, TOPICS, consent_draft, core_schema, new_subject


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

    async def append(self, *versions: int, store: EventStore | None = None) -> set[UUID]:
        """Append the subject's consent changes at these versions through `store` (by default
        the relay's own, as the service in its process does); every id in the store."""
        writer = store or self.store
        async with self.pool.acquire() as conn:
            for version in versions:
                await writer.append(conn, [consent_draft(self.subject, version)])
            return {e.event_id for e in await self.store.read_after(conn, 0, 100)}

    async def leading(self) -> bool:
        """Whether the relay leads (appends through its store wake it), within 10 s."""
        for _ in range(200):
            if not self.store.notifies:
                return True
            await asyncio.sleep(0.05)
        return False

    async def published_up_to(self, sequence: int) -> bool:
        for _ in range(100):  # the cursor moves a round trip after the broker's ack
            if self.relay.published_sequence == sequence:
                return True
            await asyncio.sleep(0.05)
        return False


@asynccontextmanager
async def relay_rig(endpoints: StackEndpoints, *, poll_interval_s: float,
                    broker_check_interval_s: float | None = None, batch_size: int = 500,
                    max_in_flight: int = 2, max_batch_bytes: int = 16_384,
                    wrap: Callable[[AIOKafkaProducer], Any] | None = None) -> AsyncIterator[Rig]:
    """`wrap` stands between the relay and its (real) producer, to hold or fail acks."""
    schema = await core_schema(endpoints.database_url)
    pool = await create_pool(endpoints.database_url, schema)
    settings = CoreSettings(kafka_enable_idempotence=False, kafka_max_batch_bytes=max_batch_bytes)
    producer = make_producer(settings,
                             endpoints.kafka_bootstrap_servers, f"{schema}-test")
    await producer.start()
    checks = ({} if broker_check_interval_s is None else
              {"bootstrap_servers": endpoints.kafka_bootstrap_servers,
               "broker_check_interval_s": broker_check_interval_s})
    store = EventStore(SOURCE)
    relay = OutboxRelay(database_url=endpoints.database_url, pool=pool, store=store,
                        producer=wrap(producer) if wrap else producer, topics=TOPICS,
                        poll_interval_s=poll_interval_s, batch_size=batch_size,
                        max_in_flight=max_in_flight, name=f"{schema}-relay",
                        **checks)  # type: ignore[arg-type]
    rig = Rig(pool, store, relay, new_subject())
    try:
        yield rig
    finally:
        if rig.task is not None:
            rig.task.cancel()
            await asyncio.gather(rig.task, return_exceptions=True)
        await producer.stop()
        await pool.close()
