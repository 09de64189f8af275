"""`golden-thread bench`: one run, every figure beside the raw limit measured in the same run.

Phases, in order (each on its own database or topics, so none sees another's data):

1. raw PostgreSQL (asyncpg) and the event store's append, then the `eventsourcing` peer;
2. raw broker (aiokafka): produce, consume in a group, both together;
3. the HTTP floor (minimal servers driven as intake is: `floor.py`), then intake over HTTP at
   its peak (its own process, relay running), then insight catching up on that backlog (the
   insight consumer pipeline), then end-to-end latency at half the peak beside the raw
   broker's latency at the same rate, duration and fetch settings;
4. scale-out: two insight instances in one group on the same backlog;
5. the priority and feedback consumer pipelines on a generated, valid history;
6. audit replay from the event stores with full verification, beside a raw scan of them and
   the same scan validating each message.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import uvloop

from contracts.topics import ALL_TOPICS, dead_letter_topic
from eventcore.embedded import EmbeddedStack
from eventcore.settings import CoreSettings
from golden_thread.bench import floor
from golden_thread.bench.context import BENCH_CONSUMERS, Context, Plan, say
from golden_thread.bench.infra import (
    Processes,
    checkpoint,
    stack_pids,
)
from golden_thread.bench.phases_later import audit_replay, other_pipelines, scale_out
from golden_thread.bench.phases_raw import broker, database
from golden_thread.bench.phases_thread import e2e, insight_pipeline, intake, start_intake
from golden_thread.bench.report import Report, environment, load_average

log = logging.getLogger(__name__)


async def run_bench(plan: Plan, command: str, json_path: Path | None = None,
                    phases: Sequence[str] | None = None) -> Report:
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
            if plan.mode == "quick" and (phases is None or "intake" in phases):
                # A quick run starts intake (a few seconds of imports and migrations) while the
                # first phases run; a full run starts it in its own phase, on a quiet machine.
                ctx.intake_proc = await start_intake(ctx)
            try:
                for key, name, phase in PHASES:
                    if phases is None or key in phases:
                        await _phase(ctx, name, phase)
                    else:
                        report.notes.append(f"phase {key!r} not run (--phases)")
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
    # What the last phase left unwritten is flushed now, not inside this one's measurement.
    why_not = await checkpoint(ctx.endpoints)
    if why_not is not None and not any(n.startswith("no checkpoint") for n in ctx.report.notes):
        ctx.report.notes.append(f"no checkpoint between phases: {why_not}")
    began = time.perf_counter()
    try:
        await phase(ctx)
    except Exception as exc:  # noqa: BLE001 - one phase failing must not hide the others
        ctx.report.failures.append(f"{name}: {type(exc).__name__}: {exc}")
        say(f"{name} FAILED: {exc}\n{traceback.format_exc()}")
    say(f"{name} done in {time.perf_counter() - began:.1f} s (load {load_average()})")


#: (key for --phases, name, phase), in the order they run. Later phases use what earlier ones
#: left: `insight` needs `intake`'s backlog; `e2e` intake's peak and the insight consumer the
#: insight phase leaves running; `scaleout` insight's backlog.
PHASES: list[tuple[str, str, Callable[[Context], Awaitable[None]]]] = [
    ("database", "database and store", database),
    ("broker", "broker", broker),
    ("floor", "HTTP floor", floor.phase),
    ("intake", "intake peak", intake),
    ("insight", "insight pipeline", insight_pipeline),
    ("e2e", "end-to-end latency", e2e),
    ("scaleout", "scale-out", scale_out),
    ("others", "priority and feedback pipelines", other_pipelines),
    ("replay", "audit replay", audit_replay),
]
PHASE_KEYS = tuple(key for key, _, _ in PHASES)
#: What a phase works on that earlier phases leave: intake's backlog and peak, and the insight
#: consumer (without it, e2e would wait its whole timeout for rows no one writes).
PHASE_NEEDS = {"insight": ("intake",), "e2e": ("intake", "insight"),
               "scaleout": ("intake", "insight")}


def missing_prerequisites(phases: Sequence[str]) -> list[str]:
    """'e2e needs insight' for every chosen phase and prerequisite of it not chosen."""
    return [f"{p} needs {need}" for p in phases for need in PHASE_NEEDS.get(p, ())
            if need not in phases]


def main(quick: bool, json_path: Path | None, command: str,
         phases: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    plan = Plan.quick() if quick else Plan.full()
    # uvloop, as the services run (`golden-thread serve`): the raw limits, the store and the
    # load generators on the loop the system runs on (docs/performance.md finding 104).
    report = uvloop.run(run_bench(plan, command, json_path, phases))
    print(report.render())
    if json_path is not None:
        print(f"JSON written to {json_path}")
    return 1 if report.failures else 0

