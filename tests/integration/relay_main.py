"""Runs one outbox relay as its own process, so tests can kill -9 it."""

from __future__ import annotations

import asyncio
import sys

from eventcore.db import create_pool
from eventcore.messaging import make_producer
from eventcore.relay import OutboxRelay
from eventcore.settings import CoreSettings
from eventcore.store import EventStore
from tests.integration.store_kit import SOURCE, TOPICS

#: Batches sent and not yet marked: what a kill can make it send twice.
MAX_IN_FLIGHT = 2


async def main(database_url: str, schema: str, bootstrap: str, batch: int) -> None:
    settings = CoreSettings(kafka_enable_idempotence=False)
    pool = await create_pool(database_url, schema)
    producer = make_producer(settings, bootstrap, "relay-under-test")
    await producer.start()
    relay = OutboxRelay(database_url=database_url, pool=pool, store=EventStore(SOURCE),
                        producer=producer, topics=TOPICS, batch_size=batch, poll_interval_s=0.05,
                        max_in_flight=MAX_IN_FLIGHT, name=f"{schema}-relay")
    print("relay started", flush=True)
    await relay.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
