"""Small measuring helpers: closed-loop workers for a fixed time, percentiles, steady rates."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    operations: int
    items: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


async def closed_loop(
    workers: int, seconds: float, make_step: Callable[[int], Callable[[], Awaitable[int]]],
    *, warmup_s: float = 0.0,
) -> Rate:
    """`workers` tasks each call their step back to back; items counted after the warm-up.

    A step returns how many items it handled (events, messages, requests)."""
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup_s
    stop = start + seconds
    counts = [0] * workers
    ops = [0] * workers

    async def run(n: int) -> None:
        step = make_step(n)
        while True:
            now = loop.time()
            if now >= stop:
                return
            handled = await step()
            if loop.time() >= start and now >= start:
                counts[n] += handled
                ops[n] += 1

    await asyncio.gather(*(run(n) for n in range(workers)))
    elapsed = loop.time() - start
    return Rate(sum(ops), sum(counts), max(elapsed, 1e-9))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def steady_rate(stamps: Sequence[float], *, low: float = 0.1, high: float = 0.9) -> float:
    """Items per second between the `low` and `high` quantiles of their completion times.

    Leaves out the start (group joins, cold caches) and the tail (one partition finishing last).
    """
    if len(stamps) < 10:
        if len(stamps) < 2:
            return 0.0
        ordered = sorted(stamps)
        span = ordered[-1] - ordered[0]
        return (len(ordered) - 1) / span if span > 0 else 0.0
    ordered = sorted(stamps)
    a = int(len(ordered) * low)
    b = int(len(ordered) * high) - 1
    span = ordered[b] - ordered[a]
    return (b - a) / span if span > 0 else 0.0
