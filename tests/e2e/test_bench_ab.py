"""`python -m golden_thread.bench.ab`: a consumer's modes in turn on one backlog, on the embedded
stack, with every round's rate, each mode's median and their ratio; bad modes refused."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2].resolve()


def ab(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "golden_thread.bench.ab", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_two_modes_each_read_the_whole_backlog_and_their_ratio_is_printed(
        tmp_path: Path) -> None:
    # Another checkout: this one's packages under another path (links, not copies).
    for package in ("contracts", "eventcore", "services", "golden_thread"):
        (tmp_path / package).symlink_to(ROOT / package, target_is_directory=True)
    # Named the long way round (as `tree=../old` would be), and a setting too.
    other = f"tree={tmp_path}/../{tmp_path.name}+GT_CONSUMER_BATCH_MAX_RECORDS=50"
    run = ab("priority", "--history", "3000", "--rounds", "1", "--mode", "", "--mode", other)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = re.MULTILINE
    rounds = re.findall(r"^ROUND (.+): ([\d,]+) events/s.*; code in (.+)$", run.stdout, lines)
    assert [(label, code) for label, _, code in rounds] == [
        ("(as is)", str(ROOT)), (other, str(tmp_path.resolve()))], "each ran its own code"
    assert all(int(rate.replace(",", "")) > 0 for _, rate, _ in rounds)
    medians = dict(re.findall(r"^SUMMARY (.+): median ([\d,]+) events/s", run.stdout, lines))
    ratio = re.search(rf"^RATIO {re.escape(other)} / \(as is\): ([\d.]+)$", run.stdout, lines)
    assert ratio is not None and set(medians) == {label for label, _, _ in rounds}
    as_is, small = (int(medians[label].replace(",", "")) for label, _, _ in rounds)
    assert abs(float(ratio[1]) - small / as_is) < 0.01


def test_a_mode_that_is_not_key_value_or_not_a_checkout_is_refused_naming_it() -> None:
    run = ab("insight", "--mode", "", "--mode", "GT_X", timeout=60)
    assert run.returncode == 2 and "'GT_X' is not KEY=VALUE" in run.stderr
    run = ab("insight", "--mode", "", "--mode", "tree=/nonexistent", timeout=60)
    assert run.returncode == 2 and "/nonexistent is not a checkout" in run.stderr
    run = ab("insight", "--mode", "GT_CONSUMER_BATCH_MAX_RECORDS=50", timeout=60)
    assert run.returncode == 2 and "at least two --mode" in run.stderr
