"""`python -m golden_thread.bench.returning`: intake driven with new participants, then with
returning ones, on the embedded stack; every round's rate and CPU, the medians and their ratio.
No timing is asserted: the figures only have to be there and agree with each other."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2].resolve()


def returning(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "golden_thread.bench.returning", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def test_new_and_returning_participants_are_each_measured_and_compared() -> None:
    run = returning("--seconds", "1", "--rounds", "1", "--participants", "20")
    assert run.returncode == 0, run.stderr[-2000:]
    lines = re.MULTILINE
    rounds = re.findall(r"^ROUND 1 (new|returning): ([\d,]+) conv/s; CPU ms per conversation: "
                        r"(.*)$", run.stdout, lines)
    assert [kind for kind, _, _ in rounds] == ["new", "returning"]
    assert all(int(rate.replace(",", "")) > 0 and "intake" in cpu for _, rate, cpu in rounds)
    medians = dict(re.findall(r"^SUMMARY (\w+): median ([\d,]+) conv/s", run.stdout, lines))
    ratio = re.search(r"^RATIO returning / new: ([\d.]+)$", run.stdout, lines)
    assert ratio is not None and set(medians) == {"new", "returning"}
    new, back = (int(medians[kind].replace(",", "")) for kind in ("new", "returning"))
    assert abs(float(ratio[1]) - back / new) < 0.01


def test_a_round_count_of_zero_is_refused_naming_it() -> None:
    run = returning("--rounds", "0", timeout=60)
    assert run.returncode == 2 and "--rounds" in run.stderr
