"""`golden-thread bench`: one run, every figure beside the raw limit measured in the same run.

Phases, in order (each on its own database or topics, so none sees another's data):

1. raw PostgreSQL (asyncpg) and the event store's append, then the `eventsourcing` peer;
2. raw broker (aiokafka): produce, consume in a group, both together;
3. intake over HTTP at its peak (its own process, relay running), then insight catching up on
   that backlog (the insight consumer pipeline), then end-to-end latency at half the peak
   beside the raw broker's latency at the same rate, duration and fetch settings;
4. scale-out: two insight instances in one group on the same backlog;
5. the priority and feedback consumer pipelines on a generated, valid history;
6. audit replay from the event stores with full verification, beside a raw scan of them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from contracts.topics import ALL_TOPICS, dead_letter_topic
from eventcore.embedded import EmbeddedStack, StackEndpoints
from eventcore.settings import CoreSettings
from golden_thread.bench import http_load, peer, raw_kafka, raw_pg, replay, store_append
from golden_thread.bench.fixtures import Drafts, conversation_bodies, raw_payload
from golden_thread.bench.infra import (
    CpuMeter,
    Processes,
    create_database,
    stack_env,
    stack_pids,
    start_service,
    wait_for,
)
from golden_thread.bench.pipelines import (
    PipelineRun,
    generated_history,
    inbox_count,
    publish,
    run_consumers,
    start_consumers,
)
from golden_thread.bench.report import Figure, RawLimit, Report, environment, load_average
from golden_thread.bench.timing import percentile
from golden_thread.demo.processes import ServiceProcess

log = logging.getLogger(__name__)

BENCH_CONSUMERS = ("insight-x2", "priority-x1", "feedback-x1")


@dataclass(frozen=True)
class Plan:
    mode: str
    db_seconds: float
    kafka_messages: int
    intake_seconds: float
    intake_warmup_s: float
    intake_clients: int
    e2e_seconds: float
    history_events: int
    replay_events: int
    timeout_s: float
    #: A consumer pipeline is timed over at most this many events of its backlog.
    pipeline_cap: int = 1_000_000

    @classmethod
    def quick(cls) -> Plan:
        return cls("quick", db_seconds=0.25, kafka_messages=3_000, intake_seconds=1.5,
                   intake_warmup_s=0.3, intake_clients=8, e2e_seconds=2.0, history_events=200,
                   replay_events=5_000, timeout_s=60)

    @classmethod
    def full(cls) -> Plan:
        return cls("full", db_seconds=3.0, kafka_messages=50_000, intake_seconds=15.0,
                   intake_warmup_s=2.0, intake_clients=8, e2e_seconds=15.0,
                   history_events=5_000, replay_events=1_000_000, timeout_s=600,
                   pipeline_cap=4_000)


@dataclass
class Context:
    plan: Plan
    report: Report
    endpoints: StackEndpoints
    work: Path
    system_url: str = ""
    intake_url: str = ""
    intake_peak: float = 0.0
    procs: Processes | None = None
    auth_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    pids: dict[str, int | None] = field(default_factory=dict)
    intake_proc: ServiceProcess | None = None

    def cpu_meter(self, **more: int | None) -> CpuMeter:
        """CPU per item of the broker, PostgreSQL (all backends), the bench itself and `more`."""
        return CpuMeter({**self.pids, "bench client": os.getpid(), **more},
                        recursive=frozenset({"postgres"}))


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


async def run_bench(plan: Plan, command: str, json_path: Path | None = None) -> Report:
    report = Report(plan.mode, command, environment=environment())
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="golden-thread-bench-"))
    topics = [*ALL_TOPICS, *map(dead_letter_topic, BENCH_CONSUMERS)]
    try:
        stack = EmbeddedStack(CoreSettings(), topics=topics, work_dir=work / "stack")
        async with stack as ep:
            ctx = Context(plan, report, ep, work, procs=Processes([]), pids=stack_pids(stack))
            say(f"stack up (broker {ep.kafka_bootstrap_servers}); mode {plan.mode}; "
                f"load average {report.environment['load_before']}")
            if plan.mode == "quick":
                # A quick run starts intake (a few seconds of imports and migrations) while the
                # first phases run; a full run starts it in its own phase, on a quiet machine.
                ctx.intake_proc = await start_intake(ctx)
            try:
                for name, phase in PHASES:
                    await _phase(ctx, name, phase)
            finally:
                assert ctx.procs is not None
                ctx.procs.stop_all()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.environment["load_after"] = load_average()
    report.environment["seconds"] = round(time.perf_counter() - started, 1)
    if json_path is not None:
        report.write_json(json_path)
    return report


async def _phase(ctx: Context, name: str, phase: Callable[[Context], Awaitable[None]]) -> None:
    say(f"{name} ...")
    began = time.perf_counter()
    try:
        await phase(ctx)
    except Exception as exc:  # noqa: BLE001 - one phase failing must not hide the others
        ctx.report.failures.append(f"{name}: {type(exc).__name__}: {exc}")
        say(f"{name} FAILED: {exc}\n{traceback.format_exc()}")
    say(f"{name} done in {time.perf_counter() - began:.1f} s (load {load_average()})")


# ---------------------------------------------------------------- 1. database and store


async def database(ctx: Context) -> None:
    plan, report = ctx.plan, ctx.report
    drafts = Drafts()
    body = drafts.body_json()
    # One database for the raw tables (public), the store (schema intake) and the peer
    # (public.stored_events): they share nothing but the server, as services do.
    url = await create_database(ctx.endpoints, "bench_db")
    for limit in await raw_pg.measure(url, body, plan.db_seconds):
        report.add_raw(limit)
    cpu: dict[int, dict[str, dict[str, float]]] = {}
    rates = await store_append.measure(url, plan.db_seconds,
                                       batches=(1, 5, 100),
                                       expected_rate=600 if plan.mode == "quick" else 3_000,
                                       meter=ctx.cpu_meter(), cpu=cpu)
    single, five, hundred = rates[1].per_s, rates[5].per_s, rates[100].per_s
    report.add(Figure("store.append_single", "store append, 1 event/txn, 8 conn", single,
                      "events/s", "pg.event_outbox_8conn", report.raw_value("pg.event_outbox_8conn"),
                      target=0.8, detail={"connections": 8, "batch": 1,
                                          "cpu_ms_per_event": cpu.get(1)}))
    report.add(Figure("store.append_batch100", "store append, 100 events/txn, 8 conn", hundred,
                      "events/s", "pg.executemany100_8conn",
                      report.raw_value("pg.executemany100_8conn"), target=0.8,
                      detail={"connections": 8, "batch": 100, "cpu_ms_per_event": cpu.get(100)}))
    ctx.report.notes.append(f"store append with 5 events/txn: {five:,.0f} events/s")
    reason = peer.available()
    if reason is None:
        limits = await asyncio.to_thread(peer.measure, url, body.encode(), plan.db_seconds)
        for limit in limits:
            report.add_raw(limit)
    else:
        # The figures stay in the report, with no raw limit, so that their absence is seen.
        report.notes.append(f"peer not measured: {reason}")
    report.add(Figure("store.append_single_vs_peer", "store append, 1 event/txn vs eventsourcing",
                      single, "events/s", "peer.append_batch1_8conn",
                      report.raw_value("peer.append_batch1_8conn"), target=3.0,
                      detail={"connections": 8, "batch": 1}))
    report.add(Figure("store.append_batch5_vs_peer", "store append, 5 events/txn vs eventsourcing",
                      five, "events/s", "peer.append_batch5_8conn",
                      report.raw_value("peer.append_batch5_8conn"), target=3.0,
                      detail={"connections": 8, "batch": 5}))


# ---------------------------------------------------------------- 2. broker


async def broker(ctx: Context) -> None:
    measured = await raw_kafka.measure(ctx.endpoints, raw_payload(400), ctx.plan.kafka_messages)
    for limit in (measured.produce, measured.consume, measured.pipeline):
        ctx.report.add_raw(limit)


# ---------------------------------------------------------------- 3. intake, insight, e2e


def _intake_env(ctx: Context) -> dict[str, str]:
    from services.intake.adapters.vault import new_master_key

    return {**stack_env(ctx.endpoints, ctx.system_url),
            "GT_INTAKE_VAULT_MASTER_KEY": new_master_key(),
            "GT_INTAKE_CONTACT_READER_TOKENS": secrets.token_urlsafe(24),
            "GT_AUTH_JWT_SECRET": ctx.auth_secret}


def _authorize(ctx: Context) -> http_load.Authorize:
    """Each listener's bearer header (services verify tokens signed with the run's own key)."""
    try:
        from eventcore.tokens import mint_token
    except ImportError:  # a tree without bearer auth
        return http_load.no_auth
    minted: dict[str, str] = {}

    def authorize(listener: str) -> str:
        if listener not in minted:
            token = mint_token(ctx.auth_secret, "community_listener", listener, ttl_s=3600)
            minted[listener] = f"Authorization: Bearer {token}\r\n"
        return minted[listener]

    return authorize


async def _intake_head(url: str) -> tuple[int, int]:
    """(events appended, events published) of intake."""
    conn = await asyncpg.connect(url)
    try:
        head = await conn.fetchval("SELECT sequence FROM intake.source_head WHERE source = 'intake'")
        published = await conn.fetchval("SELECT max(published_sequence) FROM intake.outbox_cursor")
        return int(head or 0), int(published or 0)
    finally:
        await conn.close()


async def start_intake(ctx: Context) -> ServiceProcess:
    ctx.system_url = await create_database(ctx.endpoints, "bench_system")
    proc = start_service("intake", _intake_env(ctx), ctx.work)
    assert ctx.procs is not None
    ctx.procs.running.append(proc)
    return proc


async def intake(ctx: Context) -> None:
    plan, report = ctx.plan, ctx.report
    proc = ctx.intake_proc or await start_intake(ctx)
    await proc.wait_ready(60)
    ctx.intake_url = proc.url
    bodies = itertools.cycle(list(conversation_bodies(2_000)))
    meter = ctx.cpu_meter(intake=proc.process.pid)
    meter_started = asyncio.get_running_loop().call_later(plan.intake_warmup_s, meter.start)
    results, seconds = await http_load.drive(proc.url, bodies, clients=plan.intake_clients,
                                             seconds=plan.intake_seconds,
                                             warmup_s=plan.intake_warmup_s,
                                             authorize=_authorize(ctx))
    meter_started.cancel()
    cpu = meter.stop(results.accepted)
    if results.accepted == 0:
        raise RuntimeError(f"intake accepted nothing; first error {results.first_error}")
    ctx.intake_peak = results.accepted / seconds
    report.add(Figure(
        "intake.accepted", f"intake POST /conversations, {plan.intake_clients} clients",
        ctx.intake_peak, "conv/s", "pg.txn_single_8conn", report.raw_value("pg.txn_single_8conn"),
        target=0.35,
        detail={"clients": plan.intake_clients, "seconds": round(seconds, 2),
                "accepted": results.accepted, "rejected": results.rejected,
                "first_error": results.first_error,
                "http_p50_ms": round(percentile(results.latencies_ms, 50), 2),
                "http_p99_ms": round(percentile(results.latencies_ms, 99), 2),
                "cpu_ms_per_conversation": cpu}))

    async def published() -> bool:
        head, done = await _intake_head(ctx.system_url)
        return done >= head

    await wait_for(published, "the intake relay to publish the backlog", plan.timeout_s, 0.2)


async def insight_pipeline(ctx: Context) -> None:
    """insight (its real consumer group) starts on intake's backlog: the consumer pipeline."""
    plan = ctx.plan
    backlog, _ = await _intake_head(ctx.system_url)
    run, procs = await run_consumers(ctx.endpoints, "insight", "insight", 1,
                                     min(backlog, plan.pipeline_cap), ctx.work,
                                     plan.timeout_s, database_url=ctx.system_url, keep=True,
                                     meter=lambda pids: ctx.cpu_meter(**pids))
    assert ctx.procs is not None
    ctx.procs.running.extend(procs.running)
    _pipeline_figure(ctx, run, "consumer.insight", "insight consumer (ConversationLogged)")


def _pipeline_figure(ctx: Context, run: PipelineRun, key: str, label: str) -> None:
    report = ctx.report
    report.add(Figure(key, label, run.rate, "events/s", "kafka.produce_consume",
                      report.raw_value("kafka.produce_consume"), target=0.4,
                      detail=run.detail()))
    if run.dead_lettered:
        report.notes.append(f"{run.consumer}: {run.dead_lettered} events dead-lettered")


async def e2e(ctx: Context) -> None:
    plan, report = ctx.plan, ctx.report
    if not ctx.intake_peak:
        raise RuntimeError("no intake peak was measured")
    rate = ctx.intake_peak / 2
    prefill, _ = await _intake_head(ctx.system_url)

    async def caught_up() -> bool:
        return await inbox_count(ctx.system_url, "insight", "insight") >= prefill

    await wait_for(caught_up, "insight to catch up before the paced run", plan.timeout_s, 0.2)
    bodies = itertools.cycle(list(conversation_bodies(500, seed=9)))
    results, _ = await http_load.drive(ctx.intake_url, bodies, clients=plan.intake_clients,
                                       seconds=plan.e2e_seconds, rate=rate,
                                       authorize=_authorize(ctx))
    accepted = dict(results.accepted_at)

    async def visible() -> dict[str, float]:
        conn = await asyncpg.connect(ctx.system_url)
        try:
            rows = await conn.fetch(
                "SELECT conversation_id::text AS id, extract(epoch FROM received_at)::float8 AS t"
                " FROM insight.conversations WHERE conversation_id = ANY($1::uuid[])",
                list(accepted))
        finally:
            await conn.close()
        return {r["id"]: r["t"] for r in rows}

    seen: dict[str, float] = {}

    async def all_visible() -> bool:
        seen.update(await visible())
        return len(seen) >= len(accepted)

    await wait_for(all_visible, "insight to show every conversation", plan.timeout_s, 0.2)
    latencies = [(seen[cid] - at) * 1000 for cid, at in accepted.items()]
    sent_at = await _publish_times(ctx.endpoints, set(accepted))
    relay = [(sent_at[c] - at) * 1000 for c, at in accepted.items() if c in sent_at]
    consume = [(seen[c] - sent_at[c]) * 1000 for c in accepted if c in sent_at]
    size = await _mean_message_bytes(ctx.system_url)
    raw50, raw99 = await raw_kafka.latency(ctx.endpoints, size, rate, plan.e2e_seconds, prefill)
    report.add_raw(raw50)
    report.add_raw(raw99)
    detail = {"rate": round(rate, 1), "seconds": plan.e2e_seconds, "conversations": len(latencies),
              "clients": plan.intake_clients, "topic_fill_before": prefill,
              "fetch_max_wait_ms": ctx.endpoints.kafka_fetch_max_wait_ms,
              "http_p50_ms": round(percentile(results.latencies_ms, 50), 2),
              "http_p99_ms": round(percentile(results.latencies_ms, 99), 2),
              # accepted → the relay's send (the record's CreateTime), and that → insight's row
              "relay_p50_ms": round(percentile(relay, 50), 2),
              "relay_p99_ms": round(percentile(relay, 99), 2),
              "broker_and_consumer_p50_ms": round(percentile(consume, 50), 2),
              "broker_and_consumer_p99_ms": round(percentile(consume, 99), 2),
              "measured_as": "insight row's commit-transaction start (DB clock) minus the time "
                             "the 201 reached the client (same host clock)"}
    report.add(Figure("e2e.p50", "e2e accepted→visible in insight, p50", percentile(latencies, 50),
                      "ms", "kafka.latency_p50", raw50.value, detail=detail))
    report.add(Figure("e2e.p99", "e2e accepted→visible in insight, p99", percentile(latencies, 99),
                      "ms", "kafka.latency_p99", raw99.value, target=2.0, direction="max",
                      detail=detail))


async def _publish_times(endpoints: StackEndpoints, subjects: set[str]) -> dict[str, float]:
    """When the relay sent each conversation's event (record CreateTime, seconds), by subject."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from contracts.topics import CONVERSATIONS

    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=endpoints.kafka_fetch_max_wait_ms)
    await consumer.start()
    found: dict[str, float] = {}
    try:
        await consumer.topics()
        parts = [TopicPartition(CONVERSATIONS, p)
                 for p in sorted(consumer.partitions_for_topic(CONVERSATIONS) or {0})]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        idle = 0
        while len(found) < len(subjects) and idle < 5:
            got = await consumer.getmany(timeout_ms=200, max_records=5_000)
            idle = 0 if got else idle + 1
            for records in got.values():
                for r in records:
                    key = (r.key or b"").decode()
                    if key in subjects:
                        found[key] = r.timestamp / 1000
            if all([await consumer.position(tp) >= ends[tp] for tp in parts]):
                break
    finally:
        await consumer.stop()
    return found


async def _mean_message_bytes(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        size = await conn.fetchval("SELECT avg(length(body::text)) FROM intake.events")
        return int(size or 1_400) + 200  # + sequence and the two hashes
    finally:
        await conn.close()


# ---------------------------------------------------------------- 4. scale-out


async def scale_out(ctx: Context) -> None:
    report = ctx.report
    assert ctx.procs is not None
    for proc in [p for p in ctx.procs.running if p.name.startswith("insight")]:
        proc.stop()
        ctx.procs.running.remove(proc)
    backlog, _ = await _intake_head(ctx.system_url)
    run, _ = await run_consumers(ctx.endpoints, "insight", "insight-x2", 2,
                                 min(backlog, ctx.plan.pipeline_cap), ctx.work,
                                 ctx.plan.timeout_s, meter=lambda pids: ctx.cpu_meter(**pids))
    one = next((f for f in report.figures if f.key == "consumer.insight"), None)
    report.add(Figure("scaleout.insight_2x", "insight, 2 instances in one group vs 1", run.rate,
                      "events/s", "consumer.insight", one.value if one else None,
                      detail={**run.detail(), "partitions": 3,
                              "ideal_ratio": 1.5,
                              "why_ideal_is_1.5": "3 partitions split 2 + 1 over 2 instances"}))


# ---------------------------------------------------------------- 5. priority and feedback


async def other_pipelines(ctx: Context) -> None:
    plan = ctx.plan
    history = generated_history(plan.history_events)
    first = [e for t in ("ConversationLogged", "ParticipantErased", "InsightDrafted")
             for e in history.get(t, [])]
    later = [e for t in ("PriorityAgreed", "ActionTaken") for e in history.get(t, [])]
    sent = await publish(ctx.endpoints, first)
    # priority dead-letters actions it did not record itself, so they are published only once
    # it has consumed the insights. A quick run starts feedback meanwhile (joins take ~5 s);
    # a full run starts it afterwards, so that it too starts on a backlog and runs alone.
    prio = await start_consumers(ctx.endpoints, "priority", "priority-x1", 1, ctx.work)
    feed = (await start_consumers(ctx.endpoints, "feedback", "feedback-x1", 1, ctx.work)
            if plan.mode == "quick" else None)
    try:
        run = await prio.finish(sent["InsightDrafted"], plan.timeout_s,
                                meter=ctx.cpu_meter(**prio.pids()))
        _pipeline_figure(ctx, run, "consumer.priority", "priority consumer (InsightDrafted)")
        sent.update(await publish(ctx.endpoints, later))
        feed = feed or await start_consumers(ctx.endpoints, "feedback", "feedback-x1", 1,
                                             ctx.work)
        intake_events = (await _intake_head(ctx.system_url))[0] if ctx.system_url else 0
        run = await feed.finish(min(intake_events + sum(sent.values()), plan.pipeline_cap),
                                plan.timeout_s,
                                meter=ctx.cpu_meter(**feed.pids()))
        _pipeline_figure(ctx, run, "consumer.feedback",
                         "feedback consumer (every upstream type; graph + planning)")
    finally:
        for group in (prio, feed):
            if group is not None:
                group.procs.stop_all()
    ctx.report.notes.append("generated history published for priority/feedback: "
                            + ", ".join(f"{t} {n}" for t, n in sorted(sent.items())))


# ---------------------------------------------------------------- 6. replay


async def audit_replay(ctx: Context) -> None:
    plan, report = ctx.plan, ctx.report
    url = await create_database(ctx.endpoints, "bench_replay")
    loaded, seconds, schemas = await replay.load_history(url, plan.replay_events)
    say(f"loaded {loaded:,} events into {', '.join(schemas)} in {seconds:.1f} s")
    timeout = plan.timeout_s * 2
    scan = await asyncio.to_thread(replay.run_child, "scan", url, schemas, timeout)
    replayed = await asyncio.to_thread(replay.run_child, "replay", url, schemas, timeout)
    scan_rate = scan["events"] / scan["seconds"]
    report.add_raw(RawLimit("pg.scan_decode", "PostgreSQL scan of the event stores + JSON decode",
                            scan_rate, "events/s",
                            {"events": scan["events"], "peak_rss_mb": round(scan["peak_rss_mb"])}))
    report.add_raw(RawLimit("pg.scan_peak_rss", "peak RSS of that scan (fresh process)",
                            scan["peak_rss_mb"], "MB", {}))
    detail = {"events": replayed["events"], "verified": replayed["verified"],
              "breaks": replayed["breaks"], "seconds": round(replayed["seconds"], 1),
              "rss_before_mb": round(replayed["rss_before_mb"]), "source": "event stores",
              "schemas": schemas}
    if not replayed["verified"]:
        report.failures.append(f"replay did not verify: {replayed['breaks']} breaks")
    report.add(Figure("replay.rate", f"audit replay + verify of {replayed['events']:,} events",
                      replayed["events"] / replayed["seconds"], "events/s", "pg.scan_decode",
                      scan_rate, target=0.7, detail=detail))
    report.add(Figure("replay.peak_rss", "audit replay peak RSS", replayed["peak_rss_mb"], "MB",
                      "pg.scan_peak_rss", scan["peak_rss_mb"], target=300, direction="max",
                      target_on="value", detail=detail))


PHASES: list[tuple[str, Callable[[Context], Awaitable[None]]]] = [
    ("database and store", database),
    ("broker", broker),
    ("intake peak", intake),
    ("insight pipeline", insight_pipeline),
    ("end-to-end latency", e2e),
    ("scale-out", scale_out),
    ("priority and feedback pipelines", other_pipelines),
    ("audit replay", audit_replay),
]


def main(quick: bool, json_path: Path | None, command: str) -> int:
    logging.basicConfig(level=logging.WARNING)
    plan = Plan.quick() if quick else Plan.full()
    report = asyncio.run(run_bench(plan, command, json_path))
    print(report.render())
    if json_path is not None:
        print(f"JSON written to {json_path}")
    return 1 if report.failures else 0

