"""`golden-thread rebuild SERVICE` and `golden-thread republish SERVICE --from-seq N`.

Rebuild refolds a service's read models from its own event store. Republish sends stored events
to the broker again, in sequence order; consumers' inboxes make that idempotent, and the relay's
cursor is left alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from contracts.topics import TOPIC_BY_TYPE
from eventcore.db import create_pool
from eventcore.messaging import envelope_message, make_producer, send_all
from eventcore.settings import CoreSettings
from eventcore.store import EventStore

SERVICE_NAMES = ("intake", "insight", "priority", "feedback")

Rebuild = Callable[[asyncpg.Connection, EventStore], Awaitable[int]]


def _rebuild_function(service: str) -> Rebuild:
    if service not in SERVICE_NAMES:
        raise ValueError(f"service: unknown service; choose from {', '.join(SERVICE_NAMES)}")
    module: Any = importlib.import_module(f"services.{service}.projections")
    rebuild: Rebuild = module.rebuild
    return rebuild


def _database_url(settings: CoreSettings) -> str:
    if not settings.database_url:
        raise ValueError("GT_DATABASE_URL: not set; point it at the service's database")
    return settings.database_url


async def rebuild(service: str, settings: CoreSettings) -> int:
    """Refold `service`'s read models from its store; returns the number of events folded."""
    fold = _rebuild_function(service)
    pool = await create_pool(_database_url(settings), service, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await fold(conn, EventStore(service))
    finally:
        await pool.close()


async def republish(
    service: str, settings: CoreSettings, *, from_sequence: int, batch: int = 500
) -> int:
    """Publish stored events with sequence >= from_sequence again; returns how many were sent."""
    _rebuild_function(service)  # validates the name
    if not settings.kafka_bootstrap_servers:
        raise ValueError("GT_KAFKA_BOOTSTRAP_SERVERS: not set")
    pool = await create_pool(_database_url(settings), service, max_size=1)
    producer = make_producer(settings, settings.kafka_bootstrap_servers, f"{service}-republish")
    await producer.start()
    store, sent, after = EventStore(service), 0, max(from_sequence, 1) - 1
    try:
        while True:
            async with pool.acquire() as conn:
                events = await store.read_after(conn, after, batch)
            if not events:
                return sent
            messages = [envelope_message(TOPIC_BY_TYPE[e.event_type], e.envelope)
                        for e in events if e.event_type in TOPIC_BY_TYPE]
            await send_all(producer, messages)
            sent, after = sent + len(messages), events[-1].sequence
    finally:
        await producer.stop()
        await pool.close()
