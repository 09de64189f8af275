"""The outbox relay: publishes a service's committed events in sequence order.

The event store is its own outbox; the relay tails it by sequence and records how far it got in
`outbox_cursor` only after the broker acknowledged every batch up to there (`inflight.py`: with
`max_in_flight` above 1 the next batch is sent while the last is acknowledged). A crash, or a
batch the broker refuses, re-sends from the stored cursor; consumers' inboxes absorb repeats.
One relay per service is active at a time (a session advisory lock); others stand by.

Woken at once by its own process's appends (`EventStore.wake_here`: they send no NOTIFY, whose
lock would make every commit in the cluster wait for the last one's WAL flush), by LISTEN/NOTIFY
for appends made in other processes, and by polling as a fallback. An append woken here may not
be visible yet (its transaction has not committed): the relay reads again after 1 ms, 2 ms, 4 ms
... until it is, and gives up on it (rolled back) once the delay reaches the poll interval.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from opentelemetry import trace

from eventcore.brokerwatch import BrokerWatch
from eventcore.errors import describe
from eventcore.failpoints import hit
from eventcore.inflight import InFlight
from eventcore.messaging import stored_message
from eventcore.metrics import CoreMetrics
from eventcore.produce import PartitionBatch, each_message
from eventcore.store import EventStore, notify_channel

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError, KafkaError,
)


def _account(metrics: CoreMetrics | None, watch: BrokerWatch | None,
             batches: Sequence[PartitionBatch], acks: Sequence[RecordMetadata]) -> None:
    """An acknowledged batch counted by type (one measurement per type, not per message: finding
    95) and, for the watch, each partition batch's last offset and event id (one ack each)."""
    if metrics is not None:
        for event_type, count in Counter(m.header("ce_type") for m in each_message(batches)).items():
            metrics.published.add(count, {"type": event_type.decode()})
    if watch is not None:
        watch.record((batch.newest(ack), batch.messages[-1].header("ce_id"))
                     for batch, ack in zip(batches, acks, strict=True))


class OutboxRelay:
    def __init__(
        self,
        *,
        database_url: str,
        pool: asyncpg.Pool,
        store: EventStore,
        producer: AIOKafkaProducer,
        topics: Mapping[str, str],
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        name: str | None = None,
        bootstrap_servers: str | None = None,
        broker_check_interval_s: float = 5.0,
        tracer: trace.Tracer | None = None,
        metrics: CoreMetrics | None = None,
        max_in_flight: int = 1,
    ) -> None:
        self._database_url = database_url
        self._pool = pool
        self._store = store
        self._producer = producer
        self._topics = topics
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self.name = name or f"{store.source}-relay"
        self._wake = asyncio.Event()
        #: The last sequence an append in this process wrote, visible or not yet.
        self._appended = 0
        self._retry_s = 0.0
        self.published_sequence = 0
        self._cursor: int | None = None
        self.republished_from_store = 0
        self._watch = BrokerWatch(bootstrap_servers) if bootstrap_servers else None
        self._broker_check_interval_s = broker_check_interval_s
        self._history_lost = False
        self._tracer = tracer or trace.get_tracer("golden_thread.relay")
        self._metrics = metrics
        #: Batches sent and not yet settled. `_cursor` is the last sequence read (sent);
        #: `published_sequence` the last one every batch up to it was acknowledged for.
        self._in_flight = InFlight(max_in_flight)

    async def run(self) -> None:
        """Run until cancelled, recovering from transient database and broker errors."""
        backoff = 0.1
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self._run_as_leader()
            except asyncio.CancelledError:
                raise
            except TRANSIENT_ERRORS as exc:
                if loop.time() - started > 30:  # it had been working: this is a new outage
                    backoff = 0.1
                log.warning("relay %s: %s; retrying in %.1fs", self.name, type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # noqa: BLE001 - a relay must outlive a bad moment, loudly
                log.error("relay %s: %s; retrying in %.1fs", self.name, describe(exc), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _run_as_leader(self) -> None:
        conn = await asyncpg.connect(self._database_url)
        try:
            await self._become_leader(conn)
            self._cursor = None  # read it afresh: another leader may have moved it
            await conn.add_listener(notify_channel(self._store.source), self._on_notify)
            self._store.wake_here(self._on_append)
            # The leader keeps a pool connection of its own, so a wake-up never queues for one
            # behind the service's requests.
            async with self._pool.acquire() as work:
                await self._lead(conn, work)
        finally:
            if self._store.wakes(self._on_append):  # appends NOTIFY again, for the next leader
                self._store.wake_here(None)
            await conn.close()

    async def _lead(self, listener: asyncpg.Connection, work: asyncpg.Connection) -> None:
        # The broker check reads back from the broker (a client of its own, a fetch): tens of
        # milliseconds that publishing does not wait for, so it runs beside it and only flags.
        checking = asyncio.create_task(self._watch_broker(), name=f"{self.name}-broker-check")
        try:
            while True:
                # Cleared before reading: a NOTIFY that lands while the last read comes back
                # empty then still ends the wait below at once (cleared after, it was lost and
                # the event waited a whole poll interval).
                self._wake.clear()
                while await self.publish_pending(work):
                    self._retry_s = 0.0  # progress: a retry for a later append starts short
                    if self._history_lost:  # also under a load that never lets the loop idle
                        break
                if self._history_lost:
                    await self._settle(work, wait_all=True)
                    await self._republish_from_store(work)
                    continue
                if self._watch is not None and checking.done():
                    raise RuntimeError("the broker check stopped")  # run() leads afresh
                await self._idle(self._next_wait())
                await self._settle(work)
                if listener.is_closed():
                    raise asyncpg.PostgresConnectionError("relay listener connection closed")
        finally:
            self._in_flight.abandon()  # first: synchronous, so a second cancel cannot skip it
            checking.cancel()
            await asyncio.gather(checking, return_exceptions=True)

    async def _idle(self, timeout: float) -> None:
        """Wait for a wake-up, for the oldest batch in flight to be acknowledged, or `timeout`."""
        woken = asyncio.ensure_future(self._wake.wait())
        waits: set[asyncio.Future[Any]] = {woken}
        if (oldest := self._in_flight.oldest) is not None:
            waits.add(oldest.acked)
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()

    async def _watch_broker(self) -> None:
        """Every `broker_check_interval_s`, check that the broker still holds what was
        published; if it lost it, flag it and wake the publishing loop. A check that fails is
        retried at the next interval; failing on and on is logged, once a minute or so."""
        if self._watch is None:
            return
        failures = 0
        while True:
            await asyncio.sleep(self._broker_check_interval_s)
            generation = self.republished_from_store  # a check begun before a re-publish is moot
            try:
                lost = await self._watch.history_lost()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - cannot tell now; the next check will
                if failures % max(1, round(60 / self._broker_check_interval_s)) == 0:
                    log.warning("relay %s: broker check failed (%d in a row): %s", self.name,
                                failures + 1, describe(exc))
                failures += 1
                continue
            failures = 0
            if lost and generation == self.republished_from_store:
                self._history_lost = True
                self._wake.set()

    async def _republish_from_store(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "UPDATE outbox_cursor SET published_sequence = 0, updated_at = now() WHERE relay = $1",
            self.name,
        )
        self._cursor = self.published_sequence = 0
        self._history_lost = False
        if self._watch is not None:
            self._watch.forget()
        self.republished_from_store += 1
        log.warning("relay %s: re-publishing every event from the store", self.name)

    async def _become_leader(self, conn: asyncpg.Connection) -> None:
        key = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "big", signed=True)
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            await asyncio.sleep(self._poll_interval_s)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _on_append(self, sequence: int | None) -> None:
        """An append of this process wrote up to `sequence` (None: one failed or was cancelled,
        and may have committed all the same: read once)."""
        if sequence is not None:
            self._appended = max(self._appended, sequence)
            self._retry_s = 0.0  # a new append: its retries start short
        self._wake.set()

    def _next_wait(self) -> float:
        """How long to wait for a wake-up before reading again: the poll interval, or while an
        append of this process is not visible yet, a retry delay that doubles from 1 ms; at the
        poll interval that append is given up (its transaction rolled back; the sequence will be
        written again and woken again)."""
        if self._cursor is None or self._cursor >= self._appended:
            self._retry_s = 0.0
            return self._poll_interval_s
        self._retry_s = min(2 * self._retry_s or 0.001, self._poll_interval_s)
        if self._retry_s >= self._poll_interval_s:
            self._appended = self._cursor
        return self._retry_s

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        """Send the next batch after the last one sent; returns how many events it held.

        Sending does not wait for the broker's acknowledgements: up to `max_in_flight` batches
        are on their way at once (aiokafka keeps one request in flight per broker, so they
        reach each partition in order), and the stored cursor moves once every batch up to it
        was acknowledged (`_settle`). `conn` is the leader's own pool connection."""
        if self._cursor is None:  # the leader keeps it in memory after the first read
            self._cursor = self.published_sequence = int(await conn.fetchval(
                "INSERT INTO outbox_cursor (relay) VALUES ($1) ON CONFLICT (relay)"
                " DO UPDATE SET relay = EXCLUDED.relay RETURNING published_sequence",
                self.name,
            ))
        await self._settle(conn)
        if self._in_flight.full:
            await self._in_flight.wait_oldest()
            await self._settle(conn)
        events = await self._store.read_stored_after(conn, self._cursor, self._batch_size)
        if not events:
            return 0
        messages = [stored_message(self._tracer, self._topics[e.event_type], self._store.source,
                                   e) for e in events if e.event_type in self._topics]
        hit("relay.before_publish")
        await self._in_flight.send(self._producer, events[-1].sequence, messages)
        self._cursor = events[-1].sequence
        return len(events)

    async def _settle(self, conn: asyncpg.Connection, *, wait_all: bool = False) -> None:
        """Take the acknowledged batches off the front of those in flight (with `wait_all`,
        wait for every one) and move the stored cursor past them. A batch the broker refused
        raises here, before anything after it is marked: the next leader re-sends from it."""
        if wait_all:
            await self._in_flight.wait_all()
        done, failed = self._in_flight.acknowledged()
        for sent, acks in done:
            hit("relay.after_ack")
            _account(self._metrics, self._watch, sent.batches, acks)
        if done:
            last = done[-1][0].last
            await conn.execute(_move_cursor(self.name, last))
            self.published_sequence = last
            log.debug("relay %s published up to %d", self.name, last)
        if failed is not None:
            raise failed


def _move_cursor(relay: str, sequence: int) -> str:
    """Move the stored cursor without waiting for the WAL flush (one round trip, one implicit
    transaction): the leader keeps its cursor in memory, and should the stored one lose its last
    moves in a crash, the next leader re-publishes those events — at least once, as after any
    crash between the broker's ack and this write, and the consumers' inboxes drop repeats."""
    name = relay.replace("'", "''")
    return ("SET LOCAL synchronous_commit = off;"
            f" UPDATE outbox_cursor SET published_sequence = {int(sequence)}, updated_at = now()"
            f" WHERE relay = '{name}' AND published_sequence < {int(sequence)}")
