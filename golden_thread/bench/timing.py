"""Small measuring helpers: closed-loop workers for a fixed time, percentiles, steady rates."""

from __future__ import annotations

import asyncio
import bisect
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

RoundT = TypeVar("RoundT", bound=Mapping[str, float])


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


def steady_rate(stamps: Sequence[float], *, low: float = 0.1, high: float = 0.9,
                end: float | None = None) -> float:
    """Items per second between the `low` and `high` quantiles of their start times.

    Leaves out the start (group joins, cold caches) and the tail (one partition finishing last).
    Items that share a stamp share a transaction (a consumer's batch, stamped with its start):
    the window starts and ends at the start of such a group, and counts the items of the groups
    started inside it, so a batch is never counted without the time it took. `end`, when known,
    is when the last group was seen committed: with fewer than three groups the rate is then
    taken over the whole run, from the first start to `end`.
    """
    ordered = sorted(stamps)
    if not ordered:
        return 0.0
    a = bisect.bisect_left(ordered, ordered[int(len(ordered) * low)])
    b = bisect.bisect_left(ordered, ordered[max(int(len(ordered) * high) - 1, 0)])
    if b > a:
        return (b - a) / (ordered[b] - ordered[a])
    if end is not None and end > ordered[0]:
        return len(ordered) / (end - ordered[0])
    b = bisect.bisect_left(ordered, ordered[-1])
    return b / (ordered[b] - ordered[0]) if b > 0 else 0.0


def median_ratio_round(rounds: Sequence[RoundT], value: str, raw: str) -> RoundT:
    """The round whose `value` / `raw` ratio is the median (the lower middle one for an even
    count): a figure, its raw limit and their ratio then all come from one round, each round's
    raw probe taken on that round's topic. Medians of each taken apart can pair rounds that
    were never measured together."""
    if not rounds:
        raise ValueError("rounds: none to choose from")
    ordered = sorted(rounds, key=lambda r: r[value] / r[raw])
    return ordered[(len(ordered) - 1) // 2]
