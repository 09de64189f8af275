"""The bench's floor phase: each floor measured on its own, a failing one reported as a failure
of its own while the others are still measured, and its database dropped whatever happens.
(The floors themselves run against the real stack in `tests/e2e/test_bench_quick.py`.)"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from golden_thread.bench import floor
from golden_thread.bench.context import Plan
from golden_thread.bench.report import RawLimit, Report


async def test_a_floor_that_fails_is_reported_alone_and_the_others_are_kept(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dropped: list[str] = []
    measured: list[str] = []

    async def create_database(_: Any, prefix: str) -> str:
        return f"postgresql://db/{prefix}"

    async def drop_database(_: Any, url: str) -> None:
        dropped.append(url)

    async def measure_one(kind: str, *_: Any, **__: Any) -> RawLimit:
        measured.append(kind)
        if kind == "fastapi":
            raise TimeoutError("floor-fastapi did not start in 60 s")
        return RawLimit(f"http.floor_{kind}", floor.LABELS[kind], 100.0, "req/s")

    monkeypatch.setattr(floor, "create_database", create_database)
    monkeypatch.setattr(floor, "drop_database", drop_database)
    monkeypatch.setattr(floor, "measure_one", measure_one)
    report = Report("quick", "golden-thread bench --quick")
    ctx = SimpleNamespace(plan=Plan.quick(), report=report, endpoints=None, work=tmp_path,
                          cpu_meter=lambda **_: None)

    await floor.phase(ctx)  # type: ignore[arg-type]

    assert measured == ["asgi", "fastapi", "fastapi_insert"]
    assert report.raw_value("http.floor_asgi") == 100.0
    assert report.raw_value("http.floor_fastapi_insert") == 100.0
    assert report.raw_value("http.floor_fastapi") is None
    assert report.failures == [
        "HTTP floor fastapi: TimeoutError: floor-fastapi did not start in 60 s"]
    assert dropped == ["postgresql://db/bench_floor"]


async def test_the_floor_database_is_dropped_when_the_phase_is_cancelled(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dropped: list[str] = []

    async def create_database(_: Any, prefix: str) -> str:
        return "postgresql://db/x"

    async def drop_database(_: Any, url: str) -> None:
        dropped.append(url)

    async def measure_one(*_: Any, **__: Any) -> RawLimit:
        raise KeyboardInterrupt  # not an Exception: not a floor's failure, it stops the phase

    monkeypatch.setattr(floor, "create_database", create_database)
    monkeypatch.setattr(floor, "drop_database", drop_database)
    monkeypatch.setattr(floor, "measure_one", measure_one)
    ctx = SimpleNamespace(plan=Plan.quick(), report=Report("quick", "x"), endpoints=None,
                          work=tmp_path, cpu_meter=lambda **_: None)
    with pytest.raises(KeyboardInterrupt):
        await floor.phase(ctx)  # type: ignore[arg-type]
    assert dropped == ["postgresql://db/x"]
    assert ctx.report.failures == []
