"""Raw PostgreSQL limits with asyncpg: the same ~1.4 kB event body the store writes, no library.

- one event per transaction (a single INSERT, so one round trip) on 1 and on 8 connections;
- an event row plus a separate outbox row per transaction (BEGIN, two INSERTs, COMMIT);
- batches of 100 per transaction with executemany, and with COPY;
- a scan of an events table through a server-side cursor with JSON decode of each row.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from golden_thread.bench.report import RawLimit
from golden_thread.bench.timing import closed_loop

TABLES = """
DROP TABLE IF EXISTS raw_events, raw_outbox;
CREATE TABLE raw_events (
    sequence   bigserial PRIMARY KEY,
    event_id   uuid NOT NULL UNIQUE,
    event_type text NOT NULL,
    subject    text NOT NULL,
    body       json NOT NULL
);
CREATE TABLE raw_outbox (
    id       bigserial PRIMARY KEY,
    event_id uuid NOT NULL,
    topic    text NOT NULL,
    payload  json NOT NULL
);
"""
# The body as the event store keeps it (`json`, its text as written: eventcore/sql/004), so
# that a raw limit does no work the store does not (finding 93: `jsonb` until session 15).
INSERT_EVENT = ("INSERT INTO raw_events (event_id, event_type, subject, body)"
                " VALUES ($1, 'ConversationLogged', $2, $3::json)")
INSERT_OUTBOX = ("INSERT INTO raw_outbox (event_id, topic, payload)"
                 " VALUES ($1, 'intake.conversations.v1', $2::json)")


async def _pool(url: str, size: int) -> asyncpg.Pool:
    # asyncpg's own json/jsonb codecs take text: bodies go in already encoded, so the raw
    # limit is the driver and the server.
    pool = await asyncpg.create_pool(url, min_size=size, max_size=size)
    assert pool is not None
    return pool


async def measure(url: str, body: str, seconds: float, *, connections: int = 8,
                  scan_rows: int = 50_000) -> list[RawLimit]:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(TABLES)
    finally:
        await admin.close()
    out: list[RawLimit] = []
    for conns in (1, connections):
        pool = await _pool(url, conns)
        try:
            def single(_: int, pool: asyncpg.Pool = pool) -> Any:
                async def step() -> int:
                    async with pool.acquire() as conn:
                        await conn.execute(INSERT_EVENT, uuid.uuid4(), "s", body)
                    return 1
                return step
            rate = await closed_loop(conns, seconds, single, warmup_s=min(0.5, seconds / 4))
        finally:
            await pool.close()
        out.append(RawLimit(f"pg.txn_single_{conns}conn",
                            f"asyncpg, 1 event per txn, {conns} conn", rate.per_s, "txn/s",
                            {"connections": conns, "body_bytes": len(body)}))

    pool = await _pool(url, connections)
    try:
        def with_outbox(_: int) -> Any:
            async def step() -> int:
                event_id = uuid.uuid4()
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute(INSERT_EVENT, event_id, "s", body)
                    await conn.execute(INSERT_OUTBOX, event_id, body)
                return 1
            return step
        rate = await closed_loop(connections, seconds, with_outbox, warmup_s=min(0.5, seconds / 4))
        out.append(RawLimit(f"pg.event_outbox_{connections}conn",
                            f"asyncpg, event + outbox row per txn, {connections} conn",
                            rate.per_s, "txn/s", {"connections": connections}))

        def batch(_: int) -> Any:
            async def step() -> int:
                rows = [(uuid.uuid4(), "s", body) for _ in range(100)]
                async with pool.acquire() as conn, conn.transaction():
                    await conn.executemany(INSERT_EVENT, rows)
                return 100
            return step
        rate = await closed_loop(connections, seconds, batch, warmup_s=min(0.5, seconds / 4))
        out.append(RawLimit(f"pg.executemany100_{connections}conn",
                            f"asyncpg executemany, 100 events per txn, {connections} conn",
                            rate.per_s, "events/s", {"connections": connections, "batch": 100}))

        def copy(_: int) -> Any:
            async def step() -> int:
                rows = [(uuid.uuid4(), "ConversationLogged", "s", body) for _ in range(100)]
                async with pool.acquire() as conn, conn.transaction():
                    await conn.copy_records_to_table(
                        "raw_events", records=rows,
                        columns=["event_id", "event_type", "subject", "body"])
                return 100
            return step
        rate = await closed_loop(connections, seconds, copy, warmup_s=min(0.5, seconds / 4))
        out.append(RawLimit(f"pg.copy100_{connections}conn",
                            f"asyncpg COPY, 100 events per txn, {connections} conn",
                            rate.per_s, "events/s", {"connections": connections, "batch": 100}))
    finally:
        await pool.close()
    return out


async def scan_decode(url: str, table: str, *, limit: int | None = None,
                      query: str | None = None) -> tuple[int, float]:
    """Read every row's JSON through a server-side cursor and decode it; (rows, seconds)."""
    import time

    conn = await asyncpg.connect(url)
    try:
        sql = query or f"SELECT body::text FROM {table} ORDER BY sequence"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        count = 0
        started = time.perf_counter()
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            cursor = await conn.cursor(sql)
            while rows := await cursor.fetch(2_000):
                for row in rows:
                    json.loads(row[0])
                count += len(rows)
        return count, time.perf_counter() - started
    finally:
        await conn.close()
