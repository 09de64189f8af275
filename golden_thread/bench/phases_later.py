"""Bench phases 4-6: scale-out, the priority and feedback pipelines, audit replay."""

from __future__ import annotations

import asyncio
import logging
import os

from golden_thread.bench import replay
from golden_thread.bench.context import Context, say
from golden_thread.bench.infra import (
    create_database,
    drop_database,
)
from golden_thread.bench.phases_thread import _intake_head, _pipeline_figure
from golden_thread.bench.pipelines import (
    generated_history,
    median_run,
    publish,
    run_consumers,
    start_consumers,
)
from golden_thread.bench.report import Figure, RawLimit

log = logging.getLogger(__name__)


async def scale_out(ctx: Context) -> None:
    report = ctx.report
    assert ctx.procs is not None
    for proc in [p for p in ctx.procs.running if p.name.startswith("insight")]:
        proc.stop()
        ctx.procs.running.remove(proc)
    backlog, _ = await _intake_head(ctx.system_url)
    if ctx.plan.scaleout_events:
        history = generated_history(int(ctx.plan.scaleout_events / 0.68), seed=11)
        sent = await publish(ctx.endpoints, history["ConversationLogged"])
        ctx.extra_published += sum(sent.values())
        backlog += sum(sent.values())
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
    # The system's services (intake and its relay) were the earlier phases' to measure; idle,
    # they still poll the broker and the database, on the machine these pipelines are timed on.
    assert ctx.procs is not None
    ctx.procs.stop_all()
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
        runs = [await prio.finish(sent["InsightDrafted"], plan.timeout_s,
                                  meter=ctx.cpu_meter(**prio.pids()))]
        await drop_database(ctx.endpoints, prio.url)  # its server work must not land in round 2
        for n in range(2, plan.pipeline_rounds + 1):
            again = await start_consumers(ctx.endpoints, "priority", f"priority-r{n}", 1, ctx.work)
            try:
                runs.append(await again.finish(sent["InsightDrafted"], plan.timeout_s,
                                               meter=ctx.cpu_meter(**again.pids())))
            finally:
                again.procs.stop_all()
                await drop_database(ctx.endpoints, again.url)
        _pipeline_figure(ctx, median_run(runs), "consumer.priority",
                         "priority consumer (InsightDrafted)")
        # Priority's figure is taken: its group would otherwise go on polling, and read (and
        # dead-letter) the actions published next, while feedback's pipeline is timed.
        prio.procs.stop_all()
        sent.update(await publish(ctx.endpoints, later))
        feed = feed or await start_consumers(ctx.endpoints, "feedback", "feedback-x1", 1,
                                             ctx.work)
        intake_events = (await _intake_head(ctx.system_url))[0] if ctx.system_url else 0
        expected = intake_events + ctx.extra_published + sum(sent.values())
        run = await feed.finish(min(expected, plan.pipeline_cap),
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
    # Scan and replay taken in turn, the faster of each kept: another process's burst (the
    # embedded server's own background work) slows whichever runs then, never speeds it up.
    # With them, the scan validating each message instead of decoding it: what contract
    # validation alone costs, beside the replay and what the target leaves (finding 91).
    scans, replays, checks = [], [], []
    for _ in range(plan.replay_rounds):
        scans.append(await _metered(ctx, "scan", url, schemas, timeout))
        replays.append(await _metered(ctx, "replay", url, schemas, timeout))
        checks.append(await _metered(ctx, "validate", url, schemas, timeout))
    scan = min(scans, key=lambda run: run["seconds"])
    replayed = min(replays, key=lambda run: run["seconds"])
    checked = min(checks, key=lambda run: run["seconds"])
    scan_rate = scan["events"] / scan["seconds"]
    report.add_raw(RawLimit("pg.scan_validate", "the same scan, each message validated against "
                            "its contract (pydantic), one process", checked["events"] /
                            checked["seconds"], "events/s", {"events": checked["events"]}))
    report.add_raw(RawLimit("pg.scan_decode", "PostgreSQL scan of the event stores + JSON decode",
                            scan_rate, "events/s",
                            {"events": scan["events"], "peak_rss_mb": round(scan["peak_rss_mb"])}))
    report.add_raw(RawLimit("pg.scan_peak_rss", "peak RSS of that scan (fresh process)",
                            scan["peak_rss_mb"], "MB", {}))
    detail = {"events": replayed["events"], "verified": replayed["verified"],
              "breaks": replayed["breaks"], "seconds": round(replayed["seconds"], 1),
              "rss_before_mb": round(replayed["rss_before_mb"]), "source": "event stores",
              "schemas": schemas, "rounds": len(replays),
              "seconds_each": [round(run["seconds"], 1) for run in replays],
              "scan_seconds_each": [round(run["seconds"], 1) for run in scans],
              "peak_rss_mb_each": [round(run["peak_rss_mb"]) for run in replays],
              # µs of CPU per event, PostgreSQL's included: the replay (parent and workers),
              # the scan (read and decode), the validating scan (read and validate), and what
              # 0.7 of the scan leaves for everything on the cores this bench may use.
              "cpu_us_per_event": {
                  "replay": _per_event(replayed, replayed["cpu_s"] + replayed["workers_cpu_s"]),
                  "scan": _per_event(scan, scan["cpu_s"]),
                  "scan_validate": _per_event(checked, checked["cpu_s"]),
                  "all_cores_at_target": round(
                      len(os.sched_getaffinity(0)) * 1e6 / (0.7 * scan_rate), 1)}}
    if not all(run["verified"] for run in replays):
        report.failures.append(f"replay did not verify: {replayed['breaks']} breaks")
    report.add(Figure("replay.rate", f"audit replay + verify of {replayed['events']:,} events",
                      replayed["events"] / replayed["seconds"], "events/s", "pg.scan_decode",
                      scan_rate, target=0.7, detail=detail))
    report.add(Figure("replay.peak_rss", "audit replay peak RSS", replayed["peak_rss_mb"], "MB",
                      "pg.scan_peak_rss", scan["peak_rss_mb"], target=300, direction="max",
                      target_on="value", detail=detail))


async def _metered(ctx: Context, mode: str, url: str, schemas: list[str], timeout: float
                   ) -> dict[str, float]:
    """`replay.run_child`, with PostgreSQL's CPU seconds while it ran (`postgres_cpu_s`)."""
    meter = ctx.cpu_meter()
    meter.start()
    answer = await asyncio.to_thread(replay.run_child, mode, url, schemas, timeout)
    postgres = meter.stop(1).get("postgres", {"user_ms": 0.0, "system_ms": 0.0})
    answer["postgres_cpu_s"] = (postgres["user_ms"] + postgres["system_ms"]) / 1000
    return answer


def _per_event(run: dict[str, float], process_cpu_s: float) -> float:
    return round((process_cpu_s + run["postgres_cpu_s"]) * 1e6 / max(run["events"], 1), 1)
