"""Paired A/B of one consumer: two settings, or two source trees, in turn on one backlog.

    python -m golden_thread.bench.ab priority --mode "" --mode GT_CONSUMER_BATCH_MAX_RECORDS=2000
    python -m golden_thread.bench.ab feedback --mode tree=/tmp/old --mode tree=/tmp/new --rounds 3

A generated history is published once to an embedded stack; then, round after round, each mode
starts a worker of the service (`bench.worker`) in a consumer group and database of its own,
which reads the whole backlog. Printed per round: the rate (`steady_rate` of its inbox
transaction starts) and the CPU per event of the worker, PostgreSQL and the broker; then each
mode's median and the ratio of the last mode's median to the first's. On this machine the same
code moves ±10 % from round to round (docs/performance.md findings 66, 67, 70): a whole bench
run cannot separate a few per cent, modes taken in turn on one backlog can.

A mode is `KEY=VALUE` settings joined by `+` (the worker's environment), `tree=PATH` (the worker
runs that checkout of this repository, say a `git worktree` of an older commit), or both. The
worker starts in the checkout it runs (`python -m` puts its working directory first on the
path), says which it is, and a round whose worker ran other code than its mode's is an error.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import uvloop

from contracts.topics import ALL_TOPICS
from eventcore.embedded import EmbeddedStack, StackEndpoints
from eventcore.settings import CoreSettings
from golden_thread.bench.infra import (
    CpuMeter,
    Processes,
    create_database,
    stack_env,
    stack_pids,
    start_worker,
)
from golden_thread.bench.pipelines import generated_history, inbox_stamps, publish, wait_consumed
from golden_thread.bench.timing import steady_rate

#: What each consuming service reads of a generated history, in the order published.
CONSUMES = {
    "insight": ("ConversationLogged",),
    "priority": ("InsightDrafted",),
    "feedback": ("ConversationLogged", "ParticipantErased", "InsightDrafted", "PriorityAgreed",
                 "ActionTaken"),
}


#: The checkout this module runs from: where a mode without `tree=` runs its worker.
HERE = Path(__file__).parents[2].resolve()


@dataclass
class Mode:
    label: str
    env: dict[str, str] = field(default_factory=dict)
    rates: list[float] = field(default_factory=list)
    tree: Path = HERE

    @classmethod
    def parse(cls, text: str) -> Mode:
        env: dict[str, str] = {}
        tree = HERE
        for part in filter(None, text.split("+")):
            key, sep, value = part.partition("=")
            if not sep or not key:
                raise ValueError(f"mode {text!r}: {part!r} is not KEY=VALUE")
            if key == "tree":
                if not (Path(value) / "eventcore").is_dir():
                    raise ValueError(f"mode {text!r}: {value} is not a checkout of this project")
                tree = Path(value).resolve()
                env["PYTHONPATH"] = str(tree)  # and the worker starts there (`_round`)
            else:
                env[key] = value
        return cls(text or "(as is)", env, tree=tree)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]  # the lower middle one of an even count


async def compare(service: str, modes: list[Mode], rounds: int, history_events: int,
                  timeout_s: float = 600) -> None:
    work = Path(tempfile.mkdtemp(prefix="gt-ab-"))
    try:
        stack = EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=work / "stack")
        async with stack as ep:
            history = generated_history(history_events)
            backlog = [e for t in CONSUMES[service] for e in history.get(t, [])]
            await publish(ep, backlog)
            print(f"{service}: {len(backlog):,} events, {rounds} rounds of {len(modes)} modes",
                  flush=True)
            for n in range(rounds):
                for m, mode in enumerate(modes):
                    await _round(ep, stack, work, service, mode, f"{service}-ab-{n}-{m}",
                                 len(backlog), timeout_s)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for mode in modes:
        print(f"SUMMARY {mode.label}: median {median(mode.rates):,.0f} events/s of rounds "
              + " / ".join(f"{r:,.0f}" for r in mode.rates))
    first, last = median(modes[0].rates), median(modes[-1].rates)
    print(f"RATIO {modes[-1].label} / {modes[0].label}: {last / first:.3f}")


async def _round(ep: StackEndpoints, stack: EmbeddedStack, work: Path, service: str, mode: Mode,
                 name: str, expected: int, timeout_s: float) -> None:
    url = await create_database(ep, name.replace("-", "_"))
    conn = await asyncpg.connect(url)
    try:  # the last round's dirty pages are not this round's to write
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    env = {**stack_env(ep, url), **mode.env}
    proc = start_worker(service, name, env, work, name, cwd=mode.tree)
    try:
        meter = CpuMeter({**stack_pids(stack), "worker": proc.process.pid},
                         recursive=frozenset({"postgres"}))
        counted = [0]

        def first(count: int) -> None:
            counted[0] = count
            meter.start()

        done, last_at = await wait_consumed(url, service, name, expected, Processes([proc]),
                                            timeout_s, first)
        measured = done - counted[0]  # the events after the first seen: the meter's share
        cpu = meter.stop(measured)
    finally:
        proc.stop()
    if done < expected:
        raise RuntimeError(f"{mode.label}: {name} consumed {done} of {expected} events")
    ran = worker_code(proc.log_path.read_text(errors="replace"))
    if ran is not None and ran != mode.tree:
        raise RuntimeError(f"{mode.label}: the worker ran the code in {ran}, not in {mode.tree}")
    stamps, _ = await inbox_stamps(url, service, name)
    rate = steady_rate(stamps, end=last_at)
    mode.rates.append(rate)
    per_event = (", ".join(f"{tree} {v['user_ms'] + v['system_ms']:.3f}"
                           for tree, v in cpu.items()) if measured > 0
                 else "not measured (one batch held the whole backlog)")
    # A checkout from before workers said which they run: it started there, so it ran there.
    code = str(ran) if ran is not None else f"{mode.tree} (started there; it does not say)"
    print(f"ROUND {mode.label}: {rate:,.0f} events/s; CPU ms per event: {per_event}; "
          f"code in {code}", flush=True)


def worker_code(log: str) -> Path | None:
    """The checkout a worker said it runs (`bench.worker`: "started, code in PATH")."""
    found = re.search(r"^started, code in (.+)$", log, re.MULTILINE)
    return Path(found[1]) if found else None  # "mixed: ..." is no checkout: never a mode's


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("service", choices=tuple(CONSUMES))
    parser.add_argument("--mode", action="append", required=True,
                        help="KEY=VALUE[+KEY=VALUE...] and/or tree=PATH; give two or more")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--history", type=int, default=100_000,
                        help="events of generated history (insight reads 68 %% of them, "
                             "priority 7 %%, feedback all but the notifications)")
    args = parser.parse_args(argv)
    try:
        modes = [Mode.parse(text) for text in args.mode]
    except ValueError as exc:
        parser.error(str(exc))
    if len(modes) < 2 or args.rounds < 1 or args.history < 100:
        parser.error("give at least two --mode, --rounds of 1 or more, --history of 100 or more")
    uvloop.run(compare(args.service, modes, args.rounds, args.history))
    return 0


if __name__ == "__main__":
    sys.exit(main())
