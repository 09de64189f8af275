"""`golden-thread faults`: run the scenarios in one lab, print the table, write the JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from golden_thread.faults.lab import Lab
from golden_thread.faults.runner import FULL, QUICK, Result, run_scenario
from golden_thread.faults.scenarios import SCENARIOS

COLUMNS = ("scenario", "sent", "expected", "seen", "lost", "duplicated", "recovery_s")


def table(results: Sequence[Result]) -> str:
    rows = [COLUMNS] + [
        (r.scenario, str(r.sent), str(r.expected), str(r.seen), str(r.lost), str(r.duplicated),
         "-" if r.recovery_s is None else f"{r.recovery_s:.1f}") for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def run_faults(*, json_path: Path | None, repeat: int, quick: bool,
                     only: Sequence[str] = ()) -> int:
    unknown = [n for n in only if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    names = list(only) or list(SCENARIOS)
    plan = QUICK if quick else FULL
    started = time.monotonic()
    results: list[Result] = []
    print("Starting the embedded stack and every service as its own process ...", flush=True)
    async with Lab() as lab:
        for round_ in range(repeat):
            for name in names:
                print(f"[{round_ + 1}/{repeat}] {name} ...", flush=True)
                result = await run_scenario(lab, SCENARIOS[name], plan)
                results.append(result)
                for line in result.problems + result.notes:
                    print(f"    {line}")
    print()
    print(table(results))
    failed = [r for r in results if not r.ok or r.recovery_s is None]
    print(f"\n{len(results) - len(failed)} of {len(results)} runs lost and duplicated nothing "
          f"({time.monotonic() - started:.0f} s).")
    if json_path is not None:
        json_path.write_text(json.dumps({"quick": quick, "repeat": repeat,
                                         "scenarios": [r.as_json() for r in results]},
                                        indent=2, default=str) + "\n")
        print(f"Results written to {json_path}")
    return 1 if failed else 0
