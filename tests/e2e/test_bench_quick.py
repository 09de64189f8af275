"""`golden-thread bench --quick` as CI's smoke test: it runs its own embedded stack, exits 0, and
its JSON holds every figure beside its raw limit. No timing is asserted: CI machines are shared,
and the figures are for people to read (docs/performance.md), not for a test to judge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

FIGURES = {
    "intake.accepted", "store.append_single", "store.append_batch100",
    "store.append_single_vs_peer", "store.append_batch5_vs_peer", "consumer.insight",
    "consumer.priority", "consumer.feedback", "e2e.p50", "e2e.p99", "scaleout.insight_2x",
    "replay.rate", "replay.peak_rss",
}
RAW = {
    "pg.txn_single_1conn", "pg.txn_single_8conn", "pg.event_outbox_8conn",
    "pg.executemany100_8conn", "pg.copy100_8conn", "pg.scan_decode", "kafka.produce",
    "kafka.consume", "kafka.produce_consume", "kafka.latency_p50", "kafka.latency_p99",
    "http.floor_asgi", "http.floor_fastapi", "http.floor_fastapi_insert", "pg.scan_validate",
}
FIELDS = {"value", "unit", "raw_limit", "ratio", "target", "met"}


def test_quick_bench_reports_every_figure_beside_its_raw_limit(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    # As the production overlay samples traces; the services the bench starts inherit it.
    env = {**os.environ, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
           "OTEL_TRACES_SAMPLER_ARG": "0.1", "OTEL_TRACES_EXPORTER": "none"}
    run = subprocess.run(
        [sys.executable, "-m", "golden_thread", "bench", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "quick" and report["failures"] == []
    assert report["environment"]["trace_sampler"] == "parentbased_traceidratio 0.1"
    assert FIGURES <= set(report["figures"]), sorted(FIGURES - set(report["figures"]))
    assert RAW <= set(report["raw_limits"]), sorted(RAW - set(report["raw_limits"]))
    for key, figure in report["figures"].items():
        assert FIELDS <= set(figure), (key, sorted(FIELDS - set(figure)))
        assert figure["value"] is not None and figure["value"] >= 0, key
        if figure["raw_limit"] is not None:
            assert figure["raw_limit"] > 0, key
            assert figure["ratio"] is not None, key
    # The peer is a benchmark-only extra; where it is installed its limits are measured too.
    peer_installed = not any("peer not measured" in note for note in report["notes"])
    if peer_installed:
        assert {"peer.append_batch1_8conn", "peer.append_batch5_8conn"} <= set(report["raw_limits"])
    for key in RAW:
        assert report["raw_limits"][key]["value"] > 0, key
    # The HTTP floors: each server's CPU per request measured, the inserting one's database too,
    # and intake read against the floor that inserts.
    for key in ("http.floor_asgi", "http.floor_fastapi", "http.floor_fastapi_insert"):
        cpu = report["raw_limits"][key]["detail"]["cpu_ms_per_request"]
        assert cpu["server"]["user_ms"] > 0, key
    insert_cpu = report["raw_limits"]["http.floor_fastapi_insert"]["detail"]["cpu_ms_per_request"]
    assert insert_cpu["postgres"]["user_ms"] + insert_cpu["postgres"]["system_ms"] > 0
    intake = report["figures"]["intake.accepted"]
    floor = report["raw_limits"]["http.floor_fastapi_insert"]["value"]
    assert intake["detail"]["ratio_to_floor"] == pytest.approx(intake["value"] / floor, abs=2e-3)
    # The replay beside what reading and validating cost, and what the target leaves.
    cpu = report["figures"]["replay.rate"]["detail"]["cpu_us_per_event"]
    assert set(cpu) == {"replay", "scan", "scan_validate", "all_cores_at_target"}
    assert all(value > 0 for value in cpu.values()), cpu
    assert "ratio" in run.stdout and "raw limit" in run.stdout  # the table was printed
    assert "traces sampled by parentbased_traceidratio 0.1, exported: none (so not recorded)" \
        in run.stdout
    assert report["environment"]["trace_export"] == "none"


def test_phases_runs_only_the_phases_named_and_says_which_were_not_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "golden_thread", "bench", "--quick", "--phases", "broker",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    report = json.loads(out.read_text())
    assert report["failures"] == [] and report["figures"] == {}
    assert {"kafka.produce", "kafka.consume", "kafka.produce_consume"} <= set(report["raw_limits"])
    assert not any(key.startswith("pg.") for key in report["raw_limits"])
    assert "phase 'intake' not run (--phases)" in report["notes"]


def test_an_unknown_phase_is_refused_naming_the_option_and_the_choices() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "golden_thread", "bench", "--phases", "broker,intke"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert run.returncode == 2
    assert "--phases" in run.stderr and "'intke'" in run.stderr and "replay" in run.stderr


def test_a_phase_without_the_phase_it_builds_on_is_refused_naming_both() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "golden_thread", "bench", "--phases", "broker,e2e"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert run.returncode == 2
    assert "--phases" in run.stderr
    assert "e2e needs intake" in run.stderr and "e2e needs insight" in run.stderr
