"""Replay benchmark: generate a valid history of N events, then replay and verify all of it.

`python -m golden_thread.audit.bench --events 1000000` (or `golden-thread audit bench`).
Generation fills templates dumped once through the contracts (so every message is already in
the canonical form `contracts.chain` hashes) and streams them to a temporary file, delivered
out of order in small windows as partitions would; the replay then reads that file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import uvloop

from golden_thread.audit.benchgen import generate_history
from golden_thread.audit.parallel import feed_batches
from golden_thread.audit.sources import file_messages
from golden_thread.audit.verify import Replay, ReplayOptions


@dataclass(frozen=True)
class BenchResult:
    events: int
    generate_s: float
    replay_s: float
    verified: bool
    breaks: int
    rss_before_mb: float
    peak_rss_mb: float
    max_buffered: int
    file_mb: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.replay_s if self.replay_s else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "events_per_s": round(self.events_per_s)}

    def render(self) -> str:
        return (
            f"generated {self.events:,} events ({self.file_mb:,.0f} MB) in {self.generate_s:.1f} s\n"
            f"replayed and verified in {self.replay_s:.1f} s: {self.events_per_s:,.0f} events/s, "
            f"{'verified' if self.verified else f'NOT verified ({self.breaks} breaks)'}\n"
            f"peak RSS {self.peak_rss_mb:,.0f} MB (RSS before the replay {self.rss_before_mb:,.0f}"
            f" MB); at most {self.max_buffered:,} events waiting for their turn"
        )


def run_bench(events: int, *, seed: int = 7, window: int = 64,
              work_dir: Path | None = None, quiet: bool = False) -> BenchResult:
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        path = Path(tmp) / "history.jsonl"
        started = time.perf_counter()
        with path.open("wb") as out:
            written = generate_history(out, events, rng=random.Random(seed), window=window)
        generated = time.perf_counter() - started
        file_mb = path.stat().st_size / 1e6
        rss_before = psutil.Process().memory_info().rss / 1e6
        every = max(events // 10, 1)
        started = time.perf_counter()
        replay = Replay(ReplayOptions(progress_every=every), None if quiet else _progress(started))
        uvloop.run(feed_batches(replay, file_messages(path)))  # worker processes past 20,000
        verification = replay.finish()
        elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return BenchResult(written, generated, elapsed, verification.verified,
                       verification.breaks_total, rss_before, peak_kb * 1024 / 1e6,
                       verification.max_buffered, file_mb)


def _progress(started: float) -> Any:
    def show(p: Any) -> None:
        rate = p.messages / max(time.perf_counter() - started, 1e-9)
        print(f"bench: {p.messages:,} replayed, {rate:,.0f}/s, "
              f"RSS {psutil.Process().memory_info().rss / 1e6:,.0f} MB", file=sys.stderr,
              flush=True)
    return show


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run_bench(args.events, seed=args.seed, work_dir=Path(os.environ.get("TMPDIR", "/tmp")))
    print(result.render())
    if args.json is not None:
        args.json.write_text(json.dumps(result.as_json(), indent=2) + "\n", encoding="utf-8")
    return 0 if result.verified else 1


if __name__ == "__main__":
    raise SystemExit(main())
