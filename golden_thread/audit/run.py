"""Run a replay from wherever the history is, with progress on stderr; and print its outcome."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from contracts.topics import PUBLIC_TOPICS
from eventcore.settings import CoreSettings
from golden_thread.audit.model import Verification
from golden_thread.audit.parallel import (
    collector_quieted,
    default_workers,
    feed_batches,
    steady_heap,
)
from golden_thread.audit.parallel_store import plan_ranges, replay_ranges
from golden_thread.audit.sources import (
    DEFAULT_SCHEMAS,
    Raw,
    file_messages,
    kafka_messages,
    store_messages,
)
from golden_thread.audit.verify import Progress, Replay, ReplayOptions


@dataclass(frozen=True)
class HistorySource:
    """Where to read: the broker (default), the services' event stores, or an exported file."""

    bootstrap: str | None = None
    topics: tuple[str, ...] = PUBLIC_TOPICS
    store_url: str | None = None
    schemas: tuple[str, ...] = DEFAULT_SCHEMAS
    file: Path | None = None
    missing: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.file is not None:
            return f"file {self.file}"
        if self.store_url is not None:
            return f"event stores ({', '.join(self.schemas)})"
        return f"broker topics ({', '.join(self.topics)})"

    def messages(self) -> AsyncIterator[list[Raw]]:
        if self.file is not None:
            return file_messages(self.file)
        if self.store_url is not None:
            return store_messages(self.store_url, self.schemas, missing=self.missing)
        settings = CoreSettings()
        bootstrap = self.bootstrap or settings.kafka_bootstrap_servers
        if not bootstrap:
            raise ValueError("no broker: pass --bootstrap or set GT_KAFKA_BOOTSTRAP_SERVERS")
        return kafka_messages(bootstrap, self.topics,
                              fetch_max_wait_ms=min(settings.kafka_fetch_max_wait_ms, 100))


class ProgressPrinter:
    """A plain line on stderr every N messages: how far, how fast, how much is waiting."""

    def __init__(self, quiet: bool = False) -> None:
        self.started = time.perf_counter()
        self.quiet = quiet

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        rate = p.messages / max(time.perf_counter() - self.started, 1e-9)
        print(f"audit: {p.messages:,} messages, {p.events:,} events in order, "
              f"{p.buffered:,} waiting, {p.breaks} break(s), {rate:,.0f}/s",
              file=sys.stderr, flush=True)


async def replay_history(source: HistorySource, options: ReplayOptions, *, quiet: bool = False,
                         workers: int | None = None) -> tuple[Replay, Verification]:
    """Replay and verify; a long history is checked by `workers` processes (default: one per
    core, up to 4; 0: all in this process)."""
    replay = Replay(options, ProgressPrinter(quiet))
    count = default_workers() if workers is None else workers
    ranges = [] if source.store_url is None or count == 0 else await plan_ranges(
        source.store_url, source.schemas, source.missing)
    if sum(last - first + 1 for _, first, last in ranges) >= options.parallel_after:
        assert source.store_url is not None
        steady_heap()
        with collector_quieted():
            # In a thread, so that the event loop stays free to act on Ctrl-C (a cancellation):
            # the fold then stops after the range it is on, and its workers with it.
            stop = threading.Event()
            try:
                await asyncio.to_thread(replay_ranges, replay, source.store_url, ranges, count,
                                        stop)
            except asyncio.CancelledError:
                stop.set()
                raise
    else:
        source.missing.clear()
        await feed_batches(replay, source.messages(), count)
    verification = replay.finish()
    if source.missing:
        notes = tuple(f"schema {s} has no event store; skipped" for s in source.missing)
        verification = replace(verification, notes=verification.notes + notes)
    return replay, verification


def load(source: HistorySource, options: ReplayOptions, *, quiet: bool = False,
         workers: int | None = None) -> tuple[Replay, Verification]:
    # uvloop, as the services and the bench run (docs/performance.md finding 104).
    return uvloop.run(replay_history(source, options, quiet=quiet, workers=workers))


def parse_as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def write_json(path: Path | None, document: Any) -> None:
    if path is not None:
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")


def render_summary(v: Verification, source: str) -> str:
    when = "" if v.as_of is None else f" as of {v.as_of.isoformat()}"
    lines = [(f"Replayed {v.messages:,} messages from {source}{when}: {v.events:,} events, "
              f"{v.duplicates:,} duplicate redeliveries, {len(v.sources)} sources.")]
    for name, s in sorted(v.sources.items()):
        extra = f", {s.after_as_of} after as-of" if s.after_as_of else ""
        lines.append(f"  {name}: {s.events:,} events, head #{s.head.sequence} "
                     f"{s.head.hash[:16]}…, {s.duplicates} duplicates{extra}")
    lines += [f"  note: {n}" for n in v.notes]
    if v.verified:
        lines.append("VERIFIED: every chain holds, every causation and notification resolves.")
    else:
        lines.append(f"NOT VERIFIED: {v.breaks_total} break(s). First break: {v.first_break}")
        lines += [f"  [{b.kind.value}] {b}" for b in v.breaks[1:10]]
    return "\n".join(lines)
