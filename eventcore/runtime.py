"""A service's running parts, opened and closed together: pool, store, producer, relay, broker.

Built in each service's bootstrap and started in its lifespan; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

from eventcore.consumer import BatchHandler, Handler, IdempotentConsumer
from eventcore.db import create_pool, migrate, wait_for_database
from eventcore.deadletter import DeadLetters
from eventcore.errors import describe, waiting_at
from eventcore.gauges import keep_gauges_fresh
from eventcore.messaging import make_producer
from eventcore.metrics import CoreMetrics
from eventcore.relay import OutboxRelay
from eventcore.settings import CoreSettings
from eventcore.store import EventStore
from eventcore.stream import BatchPipeline, subscribe
from eventcore.telemetry import Telemetry, configure_telemetry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subscription:
    consumer_name: str
    topics: Sequence[str]
    handlers: Mapping[str, Handler]
    #: Optional: types whose consecutive fresh events in a batch are applied at once.
    batch_handlers: Mapping[str, BatchHandler] = field(default_factory=dict)


@dataclass
class ServiceRuntime:
    source: str
    schema: str
    settings: CoreSettings
    migrations: Sequence[Path | Traversable]
    topics: Mapping[str, str]
    subscriptions: Sequence[Subscription] = ()
    pool_size: int = 10
    pool: asyncpg.Pool | None = None
    producer: AIOKafkaProducer | None = None
    broker: KafkaBroker | None = None
    relay: OutboxRelay | None = None
    consumers: list[IdempotentConsumer] = field(default_factory=list)
    subscribers: list[Any] = field(default_factory=list)
    pipelines: list[BatchPipeline] = field(default_factory=list)
    migrated: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _telemetry: Telemetry | None = None
    _metrics: CoreMetrics | None = None
    _store: EventStore | None = None

    @property
    def telemetry(self) -> Telemetry:
        if self._telemetry is None:
            self._telemetry = configure_telemetry(self.source)
        return self._telemetry

    @property
    def metrics(self) -> CoreMetrics:
        if self._metrics is None:
            meter = self.telemetry.meter_provider.get_meter(f"golden_thread.{self.source}")
            self._metrics = CoreMetrics(meter, self.source)
        return self._metrics

    @property
    def store(self) -> EventStore:
        if self._store is None:
            self._store = EventStore(self.source, self.metrics)
        return self._store

    @property
    def database_url(self) -> str:
        if not self.settings.database_url:
            raise RuntimeError("database_url: not set (start the embedded stack or set GT_DATABASE_URL)")
        return self.settings.database_url

    @property
    def bootstrap_servers(self) -> str:
        if not self.settings.kafka_bootstrap_servers:
            raise RuntimeError("kafka_bootstrap_servers: not set (set GT_KAFKA_BOOTSTRAP_SERVERS)")
        return self.settings.kafka_bootstrap_servers

    async def start(self, *, relay: bool = True, consume: bool = True) -> None:
        await wait_for_database(self.database_url)
        await migrate(self.database_url, self.schema, self.migrations, source=self.source)
        self.migrated = True
        self.pool = await create_pool(self.database_url, self.schema, max_size=self.pool_size)
        self.producer = make_producer(self.settings, self.bootstrap_servers, f"{self.source}-producer")
        await self.producer.start()
        if relay:
            self.relay = OutboxRelay(
                database_url=self.database_url, pool=self.pool, store=self.store,
                producer=self.producer, topics=self.topics,
                batch_size=self.settings.relay_batch_size,
                max_in_flight=self.settings.relay_max_in_flight,
                poll_interval_s=self.settings.relay_poll_interval_s,
                bootstrap_servers=self.bootstrap_servers,
                broker_check_interval_s=self.settings.relay_broker_check_interval_s,
                tracer=self.telemetry.tracer, metrics=self.metrics,
            )
            self._spawn(self.relay.run(), "relay")
        if consume and self.subscriptions:
            await self._start_consumers()
        relay_name = self.relay.name if self.relay else f"{self.source}-relay"
        self._spawn(keep_gauges_fresh(self.pool, self.metrics, relay_name, self.subscribers), "gauges")
        settle_collector()

    async def _start_consumers(self) -> None:
        assert self.pool is not None and self.producer is not None
        # Per-message access lines go to DEBUG: at INFO they would drown the service log.
        telemetry = KafkaTelemetryMiddleware(
            tracer_provider=self.telemetry.tracer_provider,
            meter_provider=self.telemetry.meter_provider,
        )
        self.broker = KafkaBroker(
            self.bootstrap_servers, client_id=f"{self.source}-consumer", log_level=logging.DEBUG,
            middlewares=[telemetry], metadata_max_age_ms=self.settings.kafka_metadata_max_age_ms,
        )
        for sub in self.subscriptions:
            consumer = IdempotentConsumer(
                name=sub.consumer_name, pool=self.pool, handlers=sub.handlers,
                dead_letters=DeadLetters(self.producer, sub.consumer_name),
                max_attempts=self.settings.consumer_max_attempts, metrics=self.metrics,
                tracer=self.telemetry.tracer, batch_handlers=sub.batch_handlers,
            )
            self.consumers.append(consumer)
            subscriber, pipeline = subscribe(self.broker, consumer, sub.topics, self.settings)
            self.subscribers.append(subscriber)
            self.pipelines.append(pipeline)
        await self.broker.start()

    def _spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"{self.source}-{name}")  # type: ignore[arg-type]
        task.add_done_callback(_report_crash)
        self._tasks.append(task)

    async def stop(self) -> None:
        # The batches in flight commit their offsets while the consumers still can.
        await asyncio.gather(*(p.stop(STOP_TIMEOUT_S) for p in self.pipelines))
        if self.broker is not None:
            await self.broker.stop()
        for task in self._tasks:
            task.cancel()
        # A task that failed is reported by _report_crash; stopping goes on regardless (asyncpg
        # may raise InternalClientError when a query is cancelled mid-prepare), and does not
        # wait forever for one stuck in a connection a database restart left broken.
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
            for task in stuck:
                log.warning("background task %s did not stop in %.0f s; it waits at %s",
                            task.get_name(), STOP_TIMEOUT_S, waiting_at(task))
        self._tasks.clear()
        if self.producer is not None:
            try:
                await asyncio.wait_for(self.producer.stop(), STOP_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - stopping must finish
                log.warning("producer not stopped cleanly: %s", type(exc).__name__)
        if self.pool is not None:
            await _close_pool(self.pool)
        if self._telemetry is not None:
            self._telemetry.shutdown()


#: How long stopping waits for pool connections to be given back before closing them anyway.
POOL_CLOSE_TIMEOUT_S = 10.0
#: How long stopping waits for background tasks, and for the producer to flush.
STOP_TIMEOUT_S = 10.0


def settle_collector() -> None:
    """The garbage collector as a service runs it once started.

    What is alive now (modules, schemas, clients) lives as long as the process: out of the
    collector's sight, a full collection no longer walks it, so its pauses stay short. The young
    generation is collected once 500,000 more container objects are alive than at the last
    collection, instead of 700. A consumer keeps two batches alive at once (one applying, the
    next being read: `stream.BatchPipeline`), up to 2,000 events each and dozens of objects per
    event, and every collection walks all of them: with a threshold of 50,000 the insight worker
    spent 0.8-1.0 s of 68,040 events collecting (12-15 µs per event), with 500,000 0.05-0.08 s,
    and read the backlog 27.5 % faster (feedback: 1.8 s -> 0.16 s, 19.6 % faster; the peak RSS
    unchanged, 188-201 MB; docs/performance.md finding 78). What is freed by reference counting,
    nearly everything, never waits for a collection; only cyclic garbage waits longer.
    """
    gc.freeze()
    gc.set_threshold(500_000, 20, 20)


async def _close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully, in bounded time: `Pool.close` waits for every connection to be
    released, and one left in a broken state (a database restart mid-query) never is."""
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - a timeout or a broken pool: stopping must finish
        log.warning("pool not closed cleanly (%s); terminating its connections",
                    type(exc).__name__)
        pool.terminate()


def _report_crash(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("background task %s stopped: %s", task.get_name(), describe(error))


RuntimeFactory = Callable[[CoreSettings], ServiceRuntime]
