"""Refreshes the gauges the metrics endpoint reports: outbox backlog and age, consumer lag."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from eventcore.metrics import CoreMetrics

log = logging.getLogger(__name__)


async def refresh_outbox(pool: asyncpg.Pool, metrics: CoreMetrics, relay_name: str) -> None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT h.sequence - coalesce(c.published_sequence, 0) AS backlog,
                      (SELECT stored_at FROM events
                        WHERE sequence = coalesce(c.published_sequence, 0) + 1) AS oldest
                 FROM source_head h LEFT JOIN outbox_cursor c ON c.relay = $2
                WHERE h.source = $1""",
            metrics.source, relay_name,
        )
    if row is None:
        return
    metrics.values.outbox_backlog = max(int(row["backlog"]), 0)
    oldest = row["oldest"]
    metrics.values.outbox_oldest_age_s = (
        (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
    )


async def refresh_lag(subscribers: Sequence[Any], metrics: CoreMetrics) -> None:
    lag: dict[tuple[str, str, int], int] = {}
    for subscriber in subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None:
            continue
        group = getattr(consumer, "_group_id", None) or "none"
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is None:
                continue
            position = await consumer.position(tp)
            lag[(group, tp.topic, tp.partition)] = max(int(end) - int(position), 0)
    metrics.values.consumer_lag = lag


async def keep_gauges_fresh(
    pool: asyncpg.Pool, metrics: CoreMetrics, relay_name: str, subscribers: Sequence[Any],
    interval_s: float = 1.0,
) -> None:
    while True:
        try:
            await refresh_outbox(pool, metrics, relay_name)
            await refresh_lag(subscribers, metrics)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                asyncpg.InternalClientError) as exc:
            log.debug("gauges not refreshed: %s", type(exc).__name__)
        await asyncio.sleep(interval_s)
