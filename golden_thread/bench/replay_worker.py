"""One replay measurement in a fresh process, so its peak RSS is its own.

`python -m golden_thread.bench.replay_worker scan|validate|replay DATABASE_URL SCHEMA...` prints
one JSON line: events, seconds, peak_rss_mb, rss_before_mb, CPU seconds (and, for replay, whether
it verified).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil
import uvloop


def _peak_mb() -> float:
    """Peak RSS of this process's own memory (VmHWM). ru_maxrss would not do: Linux carries the
    parent's high-water mark across fork and exec, so a child started by a big parent inherits it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


async def scan(url: str, schemas: list[str]) -> dict[str, Any]:
    """The raw read limit of the store source: audit's own query and cursor, JSON decode only
    (orjson, the fastest decoder on hand, which the audit's own digest check uses)."""
    from orjson import loads

    return await _read_all(url, schemas, loads)


async def validate(url: str, schemas: list[str]) -> dict[str, Any]:
    """The same scan with each message validated against its contract (`parse_event`, as the
    replay's workers do) instead of decoded: what contract validation alone costs per event."""
    from contracts.registry import parse_event

    return await _read_all(url, schemas, parse_event)


async def _read_all(url: str, schemas: list[str], each: Callable[[Any], object]
                    ) -> dict[str, Any]:
    from golden_thread.audit.sources import store_messages

    before = psutil.Process().memory_info().rss / 1e6
    count = 0
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    async for batch in store_messages(url, schemas):
        for raw in batch:
            each(raw)
        count += len(batch)
    seconds = time.perf_counter() - started
    return {"events": count, "seconds": seconds, "rss_before_mb": before,
            "peak_rss_mb": _peak_mb(), **_cpu_seconds(since=cpu_before)}


async def replay(url: str, schemas: list[str]) -> dict[str, Any]:
    from golden_thread.audit.run import HistorySource, replay_history
    from golden_thread.audit.verify import ReplayOptions

    before = psutil.Process().memory_info().rss / 1e6
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    workers = os.environ.get("GT_AUDIT_WORKERS")  # default: one per core, up to 4
    _, verification = await replay_history(
        HistorySource(store_url=url, schemas=tuple(schemas)),
        ReplayOptions(progress_every=10**12), quiet=True,
        workers=None if workers is None else int(workers))
    seconds = time.perf_counter() - started
    return {"events": verification.events, "messages": verification.messages,
            "seconds": seconds, "verified": verification.verified,
            "breaks": verification.breaks_total, "rss_before_mb": before,
            "peak_rss_mb": _peak_mb(), **_cpu_seconds(since=cpu_before)}


def _cpu_seconds(since: dict[str, float] | None = None) -> dict[str, float]:
    """CPU time (user + system) of this process and of its finished children (the workers),
    since `since` (the imports before it are not the measurement's; the workers' are)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    base = since or {"cpu_s": 0.0, "workers_cpu_s": 0.0}
    return {"cpu_s": own.ru_utime + own.ru_stime - base["cpu_s"],
            "workers_cpu_s": children.ru_utime + children.ru_stime - base["workers_cpu_s"]}


def main(argv: list[str]) -> int:
    mode, url, *schemas = argv
    job = {"scan": scan, "validate": validate, "replay": replay}[mode]
    print(json.dumps(uvloop.run(job(url, schemas))), flush=True)  # as the bench runs
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
