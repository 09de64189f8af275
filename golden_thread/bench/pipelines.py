"""Consumer pipelines as deployed (consume → inbox + effects + new events → publish), timed by the
database's own clock from the inbox rows each consumer writes in its effect transaction."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import DEFAULT_ON
from opentelemetry.trace import SpanKind

from contracts.topics import TOPIC_BY_TYPE
from eventcore.embedded import StackEndpoints
from eventcore.messaging import envelope_message
from eventcore.tracecontext import UnrecordedTracer, traceparent_of
from golden_thread.audit.benchgen import generate_history
from golden_thread.bench.infra import (
    CpuMeter,
    Processes,
    create_database,
    stack_env,
    start_worker,
)
from golden_thread.bench.raw_kafka import IN_FLIGHT, producer
from golden_thread.bench.timing import steady_rate


@dataclass
class PipelineRun:
    service: str
    consumer: str
    instances: int
    events: int
    rate: float
    dead_lettered: int
    seconds_to_first: float
    cpu: dict[str, dict[str, float]] | None = None
    #: Every round's rate and events, when the figure is the median of several (`median_run`).
    rounds: list[float] | None = None
    round_events: list[int] | None = None

    def detail(self) -> dict[str, Any]:
        detail = {"consumer_group": self.consumer, "instances": self.instances,
                  "events": self.events, "dead_lettered": self.dead_lettered,
                  "rate_window": "10th to 90th percentile of inbox transaction starts, whole "
                                 "batches (under 3 batches: first start to all seen committed)",
                  "cpu_ms_per_event": self.cpu}
        if self.rounds:
            detail["rounds"] = [round(rate) for rate in self.rounds]
            detail["round_events"] = self.round_events
            detail["reported"] = f"the median of {len(self.rounds)} rounds on the same backlog, " \
                                 "each in a consumer group of its own"
        return detail

    def short_rounds(self) -> str | None:
        """Says so when the rounds did not all consume the same number of events."""
        if self.round_events and len(set(self.round_events)) > 1:
            return f"{self.service}: rounds consumed different numbers of events " \
                   f"{self.round_events} (a round stalled or timed out)"
        return None


def median_run(runs: list[PipelineRun]) -> PipelineRun:
    """The round with the median rate (the lower middle one of an even count), with every
    round's rate and events in the order run; its dead letters are the most any round had (each
    round consumes the same events, so none is hidden by the choice). One run is itself."""
    if len(runs) == 1:
        return runs[0]
    ordered = sorted(runs, key=lambda run: run.rate)
    middle = ordered[(len(ordered) - 1) // 2]
    return dataclasses.replace(middle, rounds=[run.rate for run in runs],
                               round_events=[run.events for run in runs],
                               dead_lettered=max(run.dead_lettered for run in runs))


async def inbox_stamps(url: str, schema: str, consumer: str) -> tuple[list[float], int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            f"SELECT extract(epoch FROM processed_at)::float8 AS t, outcome FROM {schema}.inbox"
            " WHERE consumer = $1", consumer)
    except asyncpg.UndefinedTableError:
        return [], 0
    finally:
        await conn.close()
    return [r["t"] for r in rows], sum(1 for r in rows if r["outcome"] != "applied")


async def inbox_count(url: str, schema: str, consumer: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return (await inbox_count_at(conn, schema, consumer))[0]
    finally:
        await conn.close()


async def inbox_count_at(conn: asyncpg.Connection, schema: str, consumer: str
                         ) -> tuple[int, float]:
    """The consumer's inbox rows now, and now by the database's clock."""
    try:
        row = await conn.fetchrow(
            f"SELECT count(*) AS n, extract(epoch FROM clock_timestamp())::float8 AS t"
            f" FROM {schema}.inbox WHERE consumer = $1", consumer)
        return int(row["n"]), float(row["t"])
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return 0, 0.0


#: How often the count is read: quickly until the first rows appear (they start the CPU meter)
#: and once the end is near (it stops the meter and ends a short run's window), slowly between.
#: Each read counts the inbox (a scan of it, ≈ 5 ms at 68,000 rows): every 50 ms throughout, on
#: a new connection each time (a backend forked per read), the bench's own polling took ≈ 20 %
#: of a core from the pipeline it measured (docs/performance.md finding 51).
POLL_QUICK_S = 0.05
POLL_BETWEEN_S = 0.25


async def wait_consumed(url: str, schema: str, consumer: str, expected: int, procs: Processes,
                        timeout_s: float, on_first: Callable[[int], None] | None = None
                        ) -> tuple[int, float]:
    """Wait until `expected` inbox rows exist (or nothing moved for a while); returns the count
    and when it was last seen to grow (database clock). `on_first(count)` is called once, when
    the first rows appear. One connection reads the count throughout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last, last_change, grew_at = -1, loop.time(), 0.0
    conn = await asyncpg.connect(url)
    try:
        while True:
            procs.check_alive()
            count, db_now = await inbox_count_at(conn, schema, consumer)
            if count and on_first is not None:
                on_first(count)
                on_first = None
            now = loop.time()
            if count != last:
                last, last_change, grew_at = count, now, db_now
            if count >= expected:
                return count, grew_at
            if count > 0 and now - last_change > 15:
                return count, grew_at  # stalled: report what was done
            if now > deadline:
                return count, grew_at
            far = 0 < count < 0.9 * expected
            await asyncio.sleep(POLL_BETWEEN_S if far else POLL_QUICK_S)
    finally:
        await conn.close()


@dataclass
class Consumers:
    """Workers of one service in one consumer group, on their own database."""

    service: str
    consumer: str
    url: str
    procs: Processes
    started: float

    async def finish(self, expected: int, timeout_s: float, *, keep: bool = False,
                     meter: CpuMeter | None = None) -> PipelineRun:
        """Wait for `expected` inbox rows, then time them (and stop the workers unless `keep`).
        `meter` counts CPU from the first inbox rows on, per event consumed after them."""
        counted_from = [0]

        def first(count: int) -> None:
            counted_from[0] = count
            if meter is not None:
                meter.start()

        try:
            done, done_at = await wait_consumed(self.url, self.service, self.consumer, expected,
                                       self.procs, timeout_s, first)
            cpu = meter.stop(done - counted_from[0]) if meter is not None else None
            stamps, dead = await inbox_stamps(self.url, self.service, self.consumer)
        finally:
            if not keep:
                self.procs.stop_all()
        first_at = min(stamps) if stamps else 0.0
        run = PipelineRun(self.service, self.consumer, len(self.procs.running) or 1,
                          len(stamps), steady_rate(stamps, end=done_at), dead,
                          0.0 if not stamps else first_at - self.started)
        run.cpu = cpu
        return run

    def pids(self) -> dict[str, int | None]:
        return {p.name: p.process.pid for p in self.procs.running}


async def start_consumers(endpoints: StackEndpoints, service: str, consumer: str, instances: int,
                          log_dir: Path, database_url: str | None = None) -> Consumers:
    """Start `instances` workers of `service` in consumer group `consumer`."""
    url = database_url or await create_database(endpoints, f"bench_{service}")
    env = stack_env(endpoints, url)
    procs = Processes([start_worker(service, consumer, env, log_dir, f"{consumer}-{n + 1}")
                       for n in range(instances)])
    return Consumers(service, consumer, url, procs, time.time())


async def run_consumers(endpoints: StackEndpoints, service: str, consumer: str, instances: int,
                        expected: int, log_dir: Path, timeout_s: float,
                        database_url: str | None = None, keep: bool = False,
                        meter: Callable[[dict[str, int | None]], CpuMeter] | None = None,
                        ) -> tuple[PipelineRun, Processes]:
    """Start `instances` workers of `service` in consumer group `consumer` on a backlog of
    `expected` events it handles; time them through their inbox rows."""
    group = await start_consumers(endpoints, service, consumer, instances, log_dir, database_url)
    run = await group.finish(expected, timeout_s, keep=keep,
                             meter=meter(group.pids()) if meter else None)
    run.instances = instances
    return run, group.procs


def generated_history(events: int, seed: int = 3) -> dict[str, list[dict[str, Any]]]:
    """A valid generated history (audit.benchgen) by event type."""
    buffer = io.BytesIO()
    generate_history(buffer, events, rng=random.Random(seed))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for line in buffer.getvalue().splitlines():
        envelope = json.loads(line)
        by_type.setdefault(envelope["type"], []).append(envelope)
    return by_type


async def publish(endpoints: StackEndpoints, envelopes: list[dict[str, Any]]) -> Counter[str]:
    """Publish envelopes to their topics as the relay does (same headers, key and producer):
    the relay's message always carries its publish span's traceparent, of a new trace for an
    event stored without one (as the generated history's are), and consumers continue it."""
    prod = producer(endpoints)
    await prod.start()
    sent: Counter[str] = Counter()
    publish_spans = UnrecordedTracer(DEFAULT_ON, RandomIdGenerator())
    try:
        pending = []
        for env in envelopes:
            message = envelope_message(TOPIC_BY_TYPE[env["type"]], env)
            headers = list(message.headers)
            if not env.get("traceparent"):
                span = publish_spans.start_span("publish", kind=SpanKind.PRODUCER)
                headers.append(("traceparent", (traceparent_of(span) or "").encode()))
            pending.append(await prod.send(message.topic, message.value, key=message.key,
                                           headers=headers))
            sent[env["type"]] += 1
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    return sent
