"""The outbox relay on its own: a stored backlog caught up, events per second and CPU per event.

    python -m golden_thread.bench.relay_rig [--events 30000] [--rounds 3]

Each round stores `events` ConversationLogged drafts (each with a traceparent, as intake stores
them) in a fresh database, then times a relay of this checkout publishing them all to a fresh
topic of three partitions, as a service's relay does (its producer settings, telemetry and
metrics; the collector settled as a service's is). The CPU is this process's (the relay and its
producer; the polling that waits for it is a few wake-ups). To compare two checkouts, run it in
each in turn, `PYTHONPATH=<checkout>`, several times: this machine's speed moves by a third
from minute to minute (docs/performance.md, findings 95 and 96, were measured so).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from dataclasses import dataclass

import uvloop

from eventcore.db import create_pool, migrate
from eventcore.embedded import EmbeddedStack, StackEndpoints
from eventcore.embedded.topics import create_topics
from eventcore.messaging import make_producer
from eventcore.metrics import CoreMetrics
from eventcore.relay import OutboxRelay
from eventcore.runtime import settle_collector
from eventcore.settings import CoreSettings
from eventcore.store import EventStore
from eventcore.telemetry import configure_telemetry
from golden_thread.bench.fixtures import SOURCE, Drafts
from golden_thread.bench.infra import create_database, drop_database
from golden_thread.bench.store_append import DraftSupply

APPEND_BATCH = 500


@dataclass(frozen=True)
class CatchUp:
    topic: str
    events: int
    seconds: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s / self.events * 1e6


async def catch_up(endpoints: StackEndpoints, events: int, drafts: DraftSupply,
                   *, timeout_s: float = 300) -> CatchUp:
    """Store `events` drafts, then time a relay publishing them all."""
    url = await create_database(endpoints, "relay_rig")
    telemetry = configure_telemetry(SOURCE)
    metrics = CoreMetrics(telemetry.meter_provider.get_meter("golden_thread.bench"), SOURCE)
    await migrate(url, "intake", [], source=SOURCE)
    pool = await create_pool(url, "intake")
    settings = CoreSettings(kafka_enable_idempotence=False)
    producer = make_producer(settings, endpoints.kafka_bootstrap_servers, "relay-rig")
    try:
        store = EventStore(SOURCE)
        async with pool.acquire() as conn:
            for start in range(0, events, APPEND_BATCH):
                count = min(APPEND_BATCH, events - start)
                await store.append(conn, [d.model_copy(update={"traceparent": _traceparent()})
                                          for d in drafts.take(count)])
        topic = f"relay-rig-{secrets.token_hex(4)}"
        await create_topics(endpoints.kafka_bootstrap_servers, [topic], partitions=3)
        await producer.start()
        relay = OutboxRelay(database_url=url, pool=pool, store=EventStore(SOURCE),
                            producer=producer, topics={"ConversationLogged": topic},
                            metrics=metrics, tracer=telemetry.tracer)
        cpu, began = time.process_time(), time.perf_counter()
        task = asyncio.create_task(relay.run())
        try:
            async with asyncio.timeout(timeout_s):
                while relay.published_sequence < events:
                    await asyncio.sleep(0.005)
            return CatchUp(topic, events, time.perf_counter() - began, time.process_time() - cpu)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await producer.stop()
        await pool.close()
        await drop_database(endpoints, url)


def _traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


async def _main(events: int, rounds: int) -> None:
    async with EmbeddedStack(CoreSettings(), topics=[]) as endpoints:
        drafts = DraftSupply(Drafts())
        drafts.prepare(events * rounds)
        settle_collector()
        print(f"relay catch-up of {events:,} stored ConversationLogged, pid {os.getpid()}")
        for n in range(rounds):
            done = await catch_up(endpoints, events, drafts)
            print(f"round {n + 1}: {done.rate:9,.0f} events/s   "
                  f"CPU {done.cpu_us_per_event:6.1f} µs per event", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    uvloop.run(_main(args.events, args.rounds))


if __name__ == "__main__":
    main()
