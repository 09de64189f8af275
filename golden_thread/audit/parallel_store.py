"""A long replay of the services' event stores: each worker process reads its own ranges of a
store (its own connection, the query `sources.store_messages` runs) and checks them, so raw
rows never pass through the parent, which folds the compact records range by range, in the
order a single reader would have read them.

Ranges stop at each store's head as found when the replay starts: a store is append-only and
its sequence numbers become visible in order, so what lies below that head does not change.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.pool import AsyncResult
from typing import Any

import asyncpg

from golden_thread.audit.model import AuditBreak
from golden_thread.audit.parallel import quiet_collector
from golden_thread.audit.record import parse_batch
from golden_thread.audit.sources import connect_stores, envelope, store_query
from golden_thread.audit.verify import Replay

Range = tuple[str, int, int]  # schema, first and last sequence
#: Sequence numbers per range: a few MB of rows in a worker at a time.
RANGE = 2_000

_worker: dict[str, Any] = {}


async def plan_ranges(database_url: str, schemas: Sequence[str],
                      missing: list[str]) -> list[Range]:
    """Each store's sequence numbers up to its current head, in ranges, stores in order."""
    conn = await connect_stores(database_url, schemas)
    ranges: list[Range] = []
    try:
        for schema in schemas:
            if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.events") is None:
                missing.append(schema)
                continue
            low, high = await conn.fetchrow(
                f"SELECT min(sequence), max(sequence) FROM {schema}.events")
            if low is not None:
                ranges += [(schema, s, min(s + RANGE - 1, high))
                           for s in range(low, high + 1, RANGE)]
    finally:
        await conn.close()
    return ranges


def replay_ranges(replay: Replay, database_url: str, ranges: list[Range], workers: int) -> None:
    """Check the ranges in `workers` processes, fold them in order into `replay`."""
    as_of = replay.options.as_of
    window: deque[AsyncResult[list[tuple[Any, ...] | AuditBreak]]] = deque()
    # fork: the workers start at once with the contracts already imported.
    with multiprocessing.get_context("fork").Pool(workers, _open, (database_url,)) as pool:
        for part in ranges:
            window.append(pool.apply_async(_check_range, (part, as_of)))
            if len(window) > 2 * workers:
                replay.feed_records(window.popleft().get())
        while window:
            replay.feed_records(window.popleft().get())


def _open(database_url: str) -> None:
    quiet_collector()
    loop = asyncio.new_event_loop()
    _worker["loop"] = loop
    _worker["conn"] = loop.run_until_complete(asyncpg.connect(database_url))


def _check_range(part: Range, as_of: datetime | None) -> list[tuple[Any, ...] | AuditBreak]:
    schema, first, last = part
    loop: asyncio.AbstractEventLoop = _worker["loop"]
    conn: asyncpg.Connection = _worker["conn"]
    rows = loop.run_until_complete(conn.fetch(
        store_query(schema, "WHERE sequence BETWEEN $1 AND $2"), first, last))
    return parse_batch([envelope(row) for row in rows], as_of)
