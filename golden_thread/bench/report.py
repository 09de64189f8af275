"""Figures, raw limits and the table and JSON they are reported as."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from eventcore.telemetry import exporter_name, sampler_description

Direction = Literal["min", "max"]


@dataclass
class RawLimit:
    """One raw limit of the broker, the database or the peer, measured in this run."""

    key: str
    label: str
    value: float
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Figure:
    """One of the system's own figures beside its raw limit.

    `ratio` is value / raw_limit. `target` is the bound on the ratio (or, for `target_on =
    "value"`, on the value itself); `direction` says whether it is a floor ("min") or a ceiling
    ("max"). A figure with no target reports `target` and `met` as null.
    """

    key: str
    label: str
    value: float
    unit: str
    raw_key: str | None
    raw_limit: float | None
    target: float | None = None
    direction: Direction = "min"
    target_on: Literal["ratio", "value"] = "ratio"
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.raw_limit is None or self.raw_limit == 0:
            return None
        return self.value / self.raw_limit

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        measured = self.ratio if self.target_on == "ratio" else self.value
        if measured is None:
            return False
        return measured >= self.target if self.direction == "min" else measured <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return "—"
        sign = "≥" if self.direction == "min" else "≤"
        if self.target_on == "value":
            sign = ">" if self.direction == "min" else "<"
            return f"{sign} {self.target:g} {self.unit}"
        return f"ratio {sign} {self.target:g}"

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": _round(self.value),
            "unit": self.unit,
            "raw_limit": None if self.raw_limit is None else _round(self.raw_limit),
            "raw_key": self.raw_key,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "target": self.target_text() if self.target is not None else None,
            "met": self.met,
            "detail": self.detail,
        }


@dataclass
class Report:
    mode: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    raw: list[RawLimit] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def raw_value(self, key: str) -> float | None:
        for limit in self.raw:
            if limit.key == key:
                return limit.value
        return None

    def add_raw(self, limit: RawLimit) -> RawLimit:
        self.raw.append(limit)
        return limit

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "command": self.command,
            "environment": self.environment,
            "figures": {f.key: f.as_json() for f in self.figures},
            "raw_limits": {r.key: {"label": r.label, "value": _round(r.value), "unit": r.unit,
                                   "detail": r.detail} for r in self.raw},
            "notes": self.notes,
            "failures": self.failures,
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")

    def render(self) -> str:
        rows = [("figure", "value", "raw limit", "ratio", "target", "met")]
        for f in self.figures:
            raw = "—" if f.raw_limit is None else f"{_num(f.raw_limit)} ({f.raw_key})"
            ratio = "—" if f.ratio is None else f"{f.ratio:.2f}"
            met = {True: "yes", False: "NO", None: "—"}[f.met]
            rows.append((f.label, f"{_num(f.value)} {f.unit}", raw, ratio, f.target_text(), met))
        lines = [_table(rows), "", "Raw limits measured in this run:"]
        raw_rows = [("raw limit", "key", "value")]
        raw_rows += [(r.label, r.key, f"{_num(r.value)} {r.unit}") for r in self.raw]
        lines.append(_table(raw_rows))
        env = self.environment
        lines.append("")
        lines.append(f"mode {self.mode}; load average before/after "
                     f"{env.get('load_before')} / {env.get('load_after')}; "
                     f"{env.get('cpus')} CPUs; {env.get('seconds')} s; "
                     f"traces sampled by {env.get('trace_sampler')}, exported: "
                     f"{env.get('trace_export')}"
                     + (" (so not recorded)" if env.get("trace_export") == "none" else ""))
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"FAILED: {f}" for f in self.failures]
        return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Where the figures were taken. The trace sampler is the one every service the bench
    starts uses (they inherit OTEL_TRACES_SAMPLER/_ARG and OTEL_TRACES_EXPORTER): recording
    every trace cost a consumer a sixth to a fifth of its CPU per event, and a service that
    exports none records none (docs/performance.md, finding 71), so a figure is read with both."""
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_before": _load(),
            "trace_sampler": sampler_description(), "trace_export": exporter_name()}


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def load_average() -> list[float]:
    return _load()


def _round(value: float) -> float:
    return round(value, 3) if abs(value) < 100 else round(value, 1)


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)

