"""The event store's append (one statement per call whatever its size: version check, hashes
chained in Python, insert from arrays, head move, NOTIFY; concurrent calls outside a transaction
share a group commit), exactly as the services call it, on the same pool settings and telemetry
they use."""

from __future__ import annotations

import asyncio
from typing import Any

from eventcore.db import create_pool, migrate
from eventcore.metrics import CoreMetrics
from eventcore.store import EventStore
from eventcore.telemetry import configure_telemetry
from golden_thread.bench.fixtures import SOURCE, Drafts
from golden_thread.bench.infra import CpuMeter
from golden_thread.bench.timing import Rate, closed_loop

SCHEMA = "intake"


async def measure(url: str, seconds: float, *, connections: int = 8,
                  batches: tuple[int, ...] = (1, 5, 100), expected_rate: float = 3_000,
                  meter: CpuMeter | None = None,
                  cpu: dict[int, dict[str, dict[str, float]]] | None = None) -> dict[int, Rate]:
    """Events per second appended with `batch` events per transaction, on `connections`."""
    await migrate(url, SCHEMA, [], source=SOURCE)
    telemetry = configure_telemetry(SOURCE)
    metrics = CoreMetrics(telemetry.meter_provider.get_meter("golden_thread.bench"), SOURCE)
    store = EventStore(SOURCE, metrics)
    pool = await create_pool(url, SCHEMA, max_size=connections, min_size=connections)
    drafts = Drafts()
    out: dict[int, Rate] = {}
    try:
        for batch in batches:
            # Drafts are built before the clock starts: building them is the caller's work.
            drafts.prepare(int(expected_rate * (seconds + 1)))

            def step_of(_: int, batch: int = batch) -> Any:
                async def step() -> int:
                    chunk = drafts.take(batch)
                    async with pool.acquire() as conn:
                        await store.append(conn, chunk)
                    return batch
                return step
            warmup = min(0.5, seconds / 4)
            timer = (asyncio.get_running_loop().call_later(warmup, meter.start)
                     if meter is not None else None)
            out[batch] = await closed_loop(connections, seconds, step_of, warmup_s=warmup)
            if meter is not None and cpu is not None:
                cpu[batch] = meter.stop(out[batch].items)
            if timer is not None:
                timer.cancel()
    finally:
        await pool.close()
        telemetry.shutdown()
    return out
