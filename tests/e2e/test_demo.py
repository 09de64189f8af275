"""The main job, as a newcomer runs it: `golden-thread demo` exits 0 and its summary shows the
whole thread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EVENT_TYPES = {"ConversationLogged", "InsightDrafted", "PriorityAgreed", "ActionTaken",
               "ParticipantNotified"}


def test_the_demo_runs_the_whole_thread_and_verifies(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    run = subprocess.run(
        [sys.executable, "-m", "golden_thread", "demo", "--conversations", "24",
         "--json", str(summary_path)],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert EVENT_TYPES <= {t for t, n in summary["counts"].items() if n > 0}
    assert summary["verified"] is True and summary["complete"] is True
    assert summary["traces_match"] is True, "audit trace of every action matches the demo's chains"
    assert summary["complete_chains"] == summary["counts"]["ParticipantNotified"] > 0
    assert summary["participants_told"] > 0
    assert summary["erased_or_withdrawn_told"] == []
    assert "What changed" in run.stdout and "Who was told" in run.stdout
