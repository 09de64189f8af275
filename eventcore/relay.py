"""The outbox relay: publishes a service's committed events in sequence order.

The event store is its own outbox; the relay tails it by sequence and records how far it got in
`outbox_cursor` only after the broker acknowledged the batch. A crash between the two re-sends at
most one batch, which consumers' inboxes absorb. Woken by LISTEN/NOTIFY, with polling as a
fallback. One relay per service is active at a time (a session advisory lock); others stand by.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from eventcore.errors import describe
from eventcore.messaging import envelope_message, send_all
from eventcore.store import EventStore, notify_channel

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, KafkaError)


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
        self.published_sequence = 0

    async def run(self) -> None:
        """Run until cancelled, recovering from transient database and broker errors."""
        backoff = 0.1
        while True:
            try:
                await self._run_as_leader()
            except asyncio.CancelledError:
                raise
            except TRANSIENT_ERRORS as exc:
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
            await conn.add_listener(notify_channel(self._store.source), self._on_notify)
            while True:
                while await self.publish_pending():
                    pass
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
                except TimeoutError:
                    pass
                if conn.is_closed():
                    raise asyncpg.PostgresConnectionError("relay listener connection closed")
        finally:
            await conn.close()

    async def _become_leader(self, conn: asyncpg.Connection) -> None:
        key = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "big", signed=True)
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            await asyncio.sleep(self._poll_interval_s)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch after the cursor; returns how many events were published."""
        async with self._pool.acquire() as conn:
            cursor = await conn.fetchval(
                "INSERT INTO outbox_cursor (relay) VALUES ($1) ON CONFLICT (relay)"
                " DO UPDATE SET relay = EXCLUDED.relay RETURNING published_sequence",
                self.name,
            )
            events = await self._store.read_after(conn, cursor, self._batch_size)
        if not events:
            self.published_sequence = cursor
            return 0
        messages = [
            envelope_message(self._topics[e.event_type], e.envelope)
            for e in events
            if e.event_type in self._topics
        ]
        await send_all(self._producer, messages)
        last = events[-1].sequence
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE outbox_cursor SET published_sequence = $2, updated_at = now()"
                " WHERE relay = $1 AND published_sequence < $2",
                self.name,
                last,
            )
        self.published_sequence = last
        log.debug("relay %s published up to %d", self.name, last)
        return len(events)
