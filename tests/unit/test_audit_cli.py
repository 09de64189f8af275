"""The `audit` commands on an exported history: exit codes, summaries and JSON shapes."""

from __future__ import annotations

import json
import random
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from contracts import parse_event, verify_chain
from golden_thread.audit.benchgen import generate_history
from golden_thread.audit.cli import audit_app
from golden_thread.audit.scenario import Story, build_story
from golden_thread.audit.synthetic import deliver

runner = CliRunner()


@pytest.fixture(scope="module")
def story() -> Story:
    return build_story(seed=21, conversations=20)


def export(tmp_path: Path, story: Story, tamper: Any = None) -> Path:
    messages = [e.model_dump(mode="json") for e in deliver(story.events, seed=4)]
    if tamper is not None:
        tamper(messages)
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    return path


def test_replay_of_an_untouched_history_exits_0_with_a_json_summary(
    tmp_path: Path, story: Story
) -> None:
    out = tmp_path / "summary.json"
    result = runner.invoke(audit_app, ["replay", "--from-file", str(export(tmp_path, story)),
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "VERIFIED" in result.output
    summary = json.loads(out.read_text())
    assert summary["verified"] is True and summary["first_break"] is None
    assert summary["events"] == len(story.events)
    assert set(summary["sources"]) == {"intake", "insight", "priority", "feedback"}
    assert set(summary["sources"]["intake"]) == {"events", "head_sequence", "head_hash",
                                                 "duplicates", "after_as_of"}


def test_replay_of_an_altered_history_exits_1_naming_the_first_break(
    tmp_path: Path, story: Story
) -> None:
    def alter(messages: list[dict[str, Any]]) -> None:
        target = next(m for m in messages if m["source"] == "priority" and m["sequence"] == 2)
        target["data"]["statement"] = "Something nobody agreed."

    out = tmp_path / "summary.json"
    result = runner.invoke(audit_app, ["replay", "--from-file",
                                       str(export(tmp_path, story, alter)), "--json", str(out)])
    assert result.exit_code == 1
    first = json.loads(out.read_text())["first_break"]
    assert (first["source"], first["sequence"], first["kind"]) == ("priority", 2, "chain")
    assert first["event_id"] in result.output and "altered" in first["reason"]


def test_trace_writes_text_and_json(tmp_path: Path, story: Story) -> None:
    history = export(tmp_path, story)
    action = str(story.actions[0].data.action_id)
    out = tmp_path / "trace.json"
    result = runner.invoke(audit_app, ["trace", "--action", action, "--from-file", str(history),
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert f"action {action}" in result.output
    found = json.loads(out.read_text())
    assert found["action_id"] == action and found["verified"] is True
    assert found["priorities"][0]["insights"][0]["conversations"]
    assert story.erased is not None
    result = runner.invoke(audit_app, ["trace", "--participant", story.erased, "--from-file",
                                       str(history), "--as-of", "2025-03-01T00:00:00Z"])
    assert result.exit_code == 1 and "not in the history" in result.output


def test_report_writes_html_and_its_figures(tmp_path: Path, story: Story) -> None:
    html, out = tmp_path / "story.html", tmp_path / "story.json"
    result = runner.invoke(audit_app, ["report", "--html", str(html), "--json", str(out),
                                       "--from-file", str(export(tmp_path, story)), "--quiet"])
    assert result.exit_code == 0, result.output
    assert html.read_text().startswith("<!DOCTYPE html>")
    figures = json.loads(out.read_text())
    assert set(figures) == {"verified", "events", "flow", "pace", "equity", "counts"}
    assert figures["flow"][0] == {"from": "Conversations", "to": "Insights",
                                  "conversations": figures["flow"][0]["conversations"]}


def test_an_unreadable_source_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(audit_app, ["replay", "--from-file", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2


def test_the_benchmark_generator_writes_a_history_the_contracts_verify() -> None:
    out = BytesIO()
    written = generate_history(out, 600, rng=random.Random(3), window=1)
    events = [parse_event(line) for line in out.getvalue().splitlines()]
    assert len(events) == written >= 600
    assert verify_chain(events) is None
    assert {e.type for e in events} >= {"ConversationLogged", "InsightDrafted", "PriorityAgreed",
                                        "ActionTaken", "ParticipantNotified",
                                        "ParticipantErased"}


def test_the_bench_command_reports_rate_and_memory(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = runner.invoke(audit_app, ["bench", "--events", "3000", "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["verified"] is True and figures["events"] >= 3000
    assert figures["events_per_s"] > 0 and figures["peak_rss_mb"] > 0
