"""The story-of-change report: self-contained, free of personal data, and it renders in a real
headless browser (Debian's chromium) with the Sankey drawn and no JavaScript errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from golden_thread.audit.report import render_report
from golden_thread.audit.scenario import Story, build_story
from golden_thread.audit.verify import Replay

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def story() -> Story:
    return build_story(seed=11, conversations=30)


@pytest.fixture(scope="module")
def report_html(story: Story) -> str:
    replay = Replay().feed_all(e.model_dump_json() for e in story.events)
    return render_report(replay.graph, replay.finish())


def test_the_report_needs_no_network(report_html: str) -> None:
    assert not re.search(r"<script[^>]+src=", report_html)
    assert not re.search(r"<link[^>]+href=", report_html)
    assert "Plotly.newPlot" in report_html and len(report_html) > 1_000_000  # plotly.js inlined


def test_the_report_carries_no_personal_data(story: Story, report_html: str) -> None:
    conversation = story.conversations[0].data
    assert conversation.summary not in report_html
    assert conversation.quotes[0].ciphertext not in report_html
    assert not any(pid in report_html for pid in story.participants)
    assert not any(str(c.data.conversation_id) in report_html for c in story.conversations)


def test_the_report_tells_pace_equity_and_counts(report_html: str) -> None:
    for heading in ("From voices to change", "Pace", "Equity: whose voices travelled",
                    "conversations by category", "conversations by place"):
        assert heading in report_html
    assert "drops out before" in report_html and "verified" in report_html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_report_renders_its_sankey_in_a_headless_browser(
    report_html: str, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    page = tmp_path / "report.html"
    page.write_text(report_html, encoding="utf-8")
    profile = tmp_path / "profile"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert 'class="sankey"' in dom  # plotly drew the diagram as SVG
    nodes = re.findall(r'class="sankey-node', dom)
    assert len(nodes) >= 5
    assert "Conversations (30)" in dom
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # no JavaScript errors (or any console output at all)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_console_check_would_see_a_javascript_error(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notDefined();</script></body></html>")
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert any(":CONSOLE" in line and "Uncaught" in line for line in run.stderr.splitlines())
