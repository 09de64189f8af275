"""Check messages in worker processes while the parent reads the next batch and folds.

Each message's check (contract validation, the digest of its contents against its stated
hash) needs no other message, so batches go to a process pool; the parent keeps what needs
order (sequencing, chain links, the graph) and folds the compact records in the order the
batches were read, so the outcome is the very one a single process gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import multiprocessing
import os
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from golden_thread.audit.model import AuditBreak
from golden_thread.audit.record import parse_batch
from golden_thread.audit.sources import Raw
from golden_thread.audit.verify import Replay

Checked = list[tuple[Any, ...] | AuditBreak]
_M_MMAP_THRESHOLD = -3


def steady_heap() -> None:
    """Keep large blocks out of the heap (glibc): a replay frees many batch-sized buffers,
    which raises glibc's dynamic mmap threshold, after which the graph's growing columns are
    reallocated inside the heap and leave holes the process never gives back."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 256 * 1024)


def quiet_collector() -> None:
    """Fewer, cheaper cycle collections in a worker process that checks a long replay:
    what exists now (modules, contracts) is moved out of the collector's walk, and the young
    generation is collected every 20,000 allocations instead of 700. Checking a message makes
    some thirty short-lived containers and no cycles; with the default thresholds the
    collector ran some eighty times per range of 2,000 messages, walking what survived."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


_quieted = 0  # replays running in this process that asked for a quieter collector


@contextlib.contextmanager
def collector_quieted() -> Iterator[None]:
    """The young generation collected every 20,000 allocations (or less often, if this process
    already asked for that) while replays run in this process; as it was once the last one ends.
    Nothing is frozen here: the replay may run inside a longer-lived process (a test session, a
    service) that froze objects of its own."""
    global _quieted
    thresholds = gc.get_threshold()
    if _quieted == 0 and thresholds[0] < 20_000:
        gc.set_threshold(20_000, *thresholds[1:])
    _quieted += 1
    try:
        yield
    finally:
        _quieted -= 1
        if _quieted == 0:
            gc.set_threshold(*thresholds)


def default_workers() -> int:
    """One worker per core, at most 4: the parent, the source and the workers share them."""
    return max(1, min(4, os.cpu_count() or 1))


async def feed_batches(replay: Replay, batches: AsyncIterator[list[Raw]],
                       workers: int | None = None) -> None:
    """Feed every batch into `replay`: in this process until `parallel_after` messages, then
    through `workers` processes (none: in this process throughout)."""
    options = replay.options
    count = default_workers() if workers is None else workers
    steady_heap()
    with collector_quieted():
        await _feed(replay, batches, count, options.parallel_after, options.as_of)


async def _feed(replay: Replay, batches: AsyncIterator[list[Raw]], count: int,
                parallel_after: int, as_of: datetime | None) -> None:
    async for batch in batches:
        for raw in batch:
            replay.feed(raw)
        if count > 0 and replay.messages >= parallel_after:
            await _through_pool(replay, batches, count, as_of)
            return


async def _through_pool(replay: Replay, batches: AsyncIterator[list[Raw]], workers: int,
                        as_of: datetime | None) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[asyncio.Future[Checked] | None] = asyncio.Queue(maxsize=2 * workers)
    # fork: the workers start at once with the contracts already imported.
    with multiprocessing.get_context("fork").Pool(workers, quiet_collector) as pool:

        def submit(batch: list[Raw]) -> asyncio.Future[Checked]:
            future: asyncio.Future[Checked] = loop.create_future()

            def done(result: Checked) -> None:
                loop.call_soon_threadsafe(_settle, future, result, None)

            def failed(error: BaseException) -> None:
                loop.call_soon_threadsafe(_settle, future, None, error)

            pool.apply_async(parse_batch, (batch, as_of), callback=done, error_callback=failed)
            return future

        async def produce() -> None:
            try:
                async for batch in batches:
                    await queue.put(submit(batch))
            except asyncio.CancelledError:
                raise
            except BaseException:
                await queue.put(None)  # the folding loop stops; `await reader` raises
                raise
            await queue.put(None)

        reader = asyncio.create_task(produce())
        try:
            while (future := await queue.get()) is not None:
                replay.feed_records(await future)
        except BaseException:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            raise
        await reader


def _settle(future: asyncio.Future[Checked], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
