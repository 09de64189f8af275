"""Where the time goes: py-spy on one part of the system while the bench drives it.

    python -m golden_thread.bench.profile intake  --seconds 20   # the intake service process
    python -m golden_thread.bench.profile insight --seconds 20   # an insight consumer worker
    python -m golden_thread.bench.profile feedback --seconds 15  # a feedback consumer worker
    python -m golden_thread.bench.profile priority --seconds 4   # 4 priority groups in turn
    python -m golden_thread.bench.profile store   --seconds 10   # EventStore.append, 8 conns
    python -m golden_thread.bench.profile store   --batch 100    # ... 100 events per call
    python -m golden_thread.bench.profile intake  --native       # C extensions' frames too
    python -m golden_thread.bench.profile replay  --events 200000  # audit replay from the stores

Needs py-spy (`pip install py-spy`, in the `bench` extra). Writes the raw collapsed stacks
(flamegraph.pl / speedscope input) to --out and prints the functions holding the most samples,
inclusive and self, with their share of the samples. Only on-CPU samples are taken (py-spy
leaves out idle threads), so waiting on the database or the broker is not in the profile.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import uvloop

from contracts.topics import ALL_TOPICS
from eventcore.embedded import EmbeddedStack
from eventcore.settings import CoreSettings
from golden_thread.bench import http_load, replay, store_append
from golden_thread.bench.ab import CONSUMES
from golden_thread.bench.fixtures import conversation_bodies
from golden_thread.bench.infra import create_database, stack_env, start_service, start_worker
from golden_thread.demo.processes import ServiceProcess

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


#: Also sample native frames (C extensions: pydantic-core, asyncpg, orjson): `--native`.
NATIVE = False


def _record(out: Path) -> list[str]:
    """`py-spy record` writing raw stacks to `out`, with native frames if asked (`NATIVE`)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return [py_spy, "record", "--rate", "250", "--format", "raw", "--output", str(out),
            *(["--native"] if NATIVE else [])]


def spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    # Native frames need the process paused while sampled (py-spy refuses --nonblocking).
    return subprocess.Popen([*_record(out), "--pid", str(pid), "--duration", str(int(seconds)),
                             *([] if NATIVE else ["--nonblocking"])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(recorder: subprocess.Popen[bytes]) -> None:
    """Wait for py-spy; if it failed, say why (else an older output would be summarised)."""
    _, err = recorder.communicate()
    if recorder.returncode != 0:
        raise RuntimeError(f"py-spy failed ({recorder.returncode}): {err.decode(errors='replace')}")


def summarise(raw: Path, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples"]
    lines += ["", "inclusive (share of samples with the function on the stack):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "self (share of samples in the function itself):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


async def _profile_intake(seconds: float, out: Path, work: Path) -> None:
    async with EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=work / "stack") as ep:
        from golden_thread.bench.context import Context, Plan
        from golden_thread.bench.infra import Processes
        from golden_thread.bench.phases_thread import _authorize, _intake_env
        from golden_thread.bench.report import Report

        ctx = Context(Plan.quick(), Report("profile", ""), ep, work, procs=Processes([]))
        ctx.system_url = await create_database(ep, "profile")
        proc = start_service("intake", _intake_env(ctx), work)
        try:
            await proc.wait_ready(60)
            bodies = itertools.cycle(list(conversation_bodies(2_000)))
            load = asyncio.create_task(http_load.drive(proc.url, bodies, clients=8,
                                                       seconds=seconds + 3,
                                                       authorize=_authorize(ctx)))
            await asyncio.sleep(2)
            recorder = spy(proc.process.pid, seconds, out)
            results, took = await load
            await asyncio.to_thread(finish, recorder)
            print(f"intake accepted {results.accepted / took:,.0f} conv/s while profiled")
        finally:
            proc.stop()


#: About how many events a second a consumer gets through (the backlog must outlast the window).
_RATES = {"insight": 8_000, "feedback": 6_000}


async def _profile_consumer(service: str, seconds: float, out: Path, work: Path) -> None:
    types, rate = CONSUMES[service], _RATES[service]
    async with EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=work / "stack") as ep:
        from golden_thread.bench.pipelines import generated_history, publish

        history = generated_history(int(seconds * rate * 1.5))
        await publish(ep, [e for t in types for e in history.get(t, [])])
        url = await create_database(ep, "profile")
        proc = start_worker(service, f"{service}-profile", stack_env(ep, url), work, service)
        try:
            await asyncio.sleep(6)  # the group join
            recorder = spy(proc.process.pid, seconds, out)
            await asyncio.to_thread(finish, recorder)
        finally:
            proc.stop()


async def _profile_priority(seconds: float, out: Path, work: Path) -> None:
    """priority on a generated history's 13,608 insights (about a second's work at its rate):
    fresh consumer groups read them one after another, `seconds` of them (7 s of py-spy each,
    the group join included, which is idle and leaves no samples); one file of their stacks."""
    async with EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=work / "stack") as ep:
        from golden_thread.bench.pipelines import generated_history, publish

        history = generated_history(200_000)
        await publish(ep, history["InsightDrafted"])
        rounds = max(1, round(seconds))
        with out.open("wb") as merged:
            for n in range(rounds):
                url = await create_database(ep, f"profile_priority_{n}")
                proc = start_worker("priority", f"priority-profile-{n}", stack_env(ep, url),
                                    work, f"priority-{n}")
                part = out.with_suffix(f".{n}")
                try:  # once its imports are done
                    await _started(proc, 60)
                    recorder = spy(proc.process.pid, 7, part)
                    await asyncio.to_thread(finish, recorder)
                finally:
                    proc.stop()
                if not part.exists():
                    raise RuntimeError(f"py-spy wrote no samples of priority round {n + 1}")
                merged.write(part.read_bytes())
                part.unlink()
        print(f"priority read {len(history['InsightDrafted']):,} insights {rounds} times")


async def _started(proc: ServiceProcess, timeout_s: float) -> None:
    """Until the worker says "started" (bench.worker prints it once its runtime has started)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while b"started" not in proc.log_path.read_bytes():
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}; "
                               f"see {proc.log_path}")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{proc.name} did not start in {timeout_s} s; see {proc.log_path}")
        await asyncio.sleep(0.05)


async def _profile_store(seconds: float, out: Path, work: Path, batch: int = 1) -> None:
    async with EmbeddedStack(CoreSettings(), topics=[], work_dir=work / "stack") as ep:
        url = await create_database(ep, "profile")
        code = ("import uvloop; from golden_thread.bench import store_append; "
                f"print(uvloop.run(store_append.measure({url!r}, {seconds + 2}, "
                f"batches=({batch},))))")
        child = subprocess.Popen([sys.executable, "-c", code])  # noqa: ASYNC220
        # The drafts for the timed section are made before it (≈ 40 µs each): not profiled.
        ceiling = store_append.RATE_CEILING.get(batch, store_append.RATE_CEILING_LARGE)
        await asyncio.sleep(4 + 40e-6 * ceiling * (seconds + 3))
        try:
            recorder = spy(child.pid, seconds, out)
            await asyncio.to_thread(finish, recorder)
            await asyncio.to_thread(child.wait)
        finally:  # not left appending to a stack that is going away
            if child.poll() is None:
                child.terminate()
                await asyncio.to_thread(child.wait)


async def _profile_replay(events: int, out: Path, work: Path) -> None:
    async with EmbeddedStack(CoreSettings(), topics=[], work_dir=work / "stack") as ep:
        url = await create_database(ep, "profile")
        _, _, schemas = await replay.load_history(url, events)
        await asyncio.to_thread(subprocess.run, [
            *_record(out), "--",
            sys.executable, "-m", "golden_thread.bench.replay_worker", "replay", url, *schemas],
            check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("target", choices=("intake", "insight", "feedback", "priority", "store",
                                           "replay"))
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1, help="store: events per append call")
    parser.add_argument("--native", action="store_true",
                        help="sample C extensions' frames too (the process is paused to sample)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    global NATIVE  # a flag for `spy`, set once per command
    NATIVE = args.native
    out = args.out or Path(tempfile.gettempdir()) / f"gt-profile-{args.target}.txt"
    work = Path(tempfile.mkdtemp(prefix="gt-profile-"))
    try:
        if args.target == "replay":
            uvloop.run(_profile_replay(args.events, out, work))
        elif args.target in _RATES:
            uvloop.run(_profile_consumer(args.target, args.seconds, out, work))
        elif args.target == "store":
            uvloop.run(_profile_store(args.seconds, out, work, args.batch))
        else:
            job = {"intake": _profile_intake, "priority": _profile_priority}[args.target]
            uvloop.run(job(args.seconds, out, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"raw stacks: {out} (load average {os.getloadavg()[0]:.2f})")
    print(summarise(out, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
