"""Pace, equity, flow and counts from the influence graph: pure, aggregate, no personal data."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from golden_thread.audit.graph import InfluenceGraph
from golden_thread.audit.nodes import EQUITY_DIMENSIONS

DAY = 86_400.0
STAGES = ("heard", "cited", "prioritised", "told")
NOT_STATED = "not stated"
ERASED = "erased"


@dataclass(frozen=True, slots=True)
class Pace:
    stage: str
    count: int
    median_days: float | None
    p90_days: float | None


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted `values` (share in (0, 1])."""
    return values[max(0, math.ceil(share * len(values)) - 1)]


def _pace(stage: str, gaps: Iterable[float]) -> Pace:
    days = sorted(max(0.0, g) / DAY for g in gaps)
    if not days:
        return Pace(stage, 0, None, None)
    return Pace(stage, len(days), round(statistics.median(days), 2), round(percentile(days, 0.9), 2))


@dataclass(frozen=True, slots=True)
class Reach:
    """Which conversations and participants got how far along the thread."""

    cited: set[int]
    prioritised: set[int]
    answered: set[int]
    told: set[int]

    @classmethod
    def of(cls, g: InfluenceGraph) -> Reach:
        cited = {c for i in g.insights.values() for c in i.conversations if c in g.conversations}
        agreed = {i for p in g.priorities.values() for i in p.insights if i in g.insights}
        prioritised = {c for i in agreed for c in g.insights[i].conversations} & cited
        acted = {i for a in g.actions.values() for p in a.priorities if p in g.priorities
                 for i in g.priorities[p].insights if i in g.insights}
        answered = {c for i in acted for c in g.insights[i].conversations} & prioritised
        told = {c for n in g.notifications.values() for c in n.conversations} & answered
        return cls(cited, prioritised, answered, told)


def pace(g: InfluenceGraph) -> list[Pace]:
    first_cited: dict[int, float] = {}
    for insight in g.insights.values():
        for c in insight.conversations:
            conv = g.conversations.get(c)
            if conv is not None:
                at = insight.time if insight.time >= conv.time else insight.revised
                first_cited[c] = min(first_cited.get(c, at), at)
    first_agreed: dict[int, float] = {}
    for priority in g.priorities.values():
        for ikey in priority.insights:
            first_agreed[ikey] = min(first_agreed.get(ikey, priority.time), priority.time)
    first_action: dict[int, float] = {}
    for action in g.actions.values():
        for pkey in action.priorities:
            first_action[pkey] = min(first_action.get(pkey, action.time), action.time)
    told = [n for n in g.notifications.values() if n.action in g.actions]
    ends = [n.time - min(g.conversations[c].time for c in theirs)
            for n in told if (theirs := [c for c in n.conversations if c in g.conversations])]
    return [
        _pace("conversation → insight",
              [t - g.conversations[c].time for c, t in first_cited.items()]),
        _pace("insight → priority",
              [t - g.insights[i].time for i, t in first_agreed.items() if i in g.insights]),
        _pace("priority → action",
              [t - g.priorities[p].time for p, t in first_action.items() if p in g.priorities]),
        _pace("action → person told", [n.time - g.actions[n.action].time for n in told]),
        _pace("conversation → person told (end to end)", ends),
    ]


def equity(g: InfluenceGraph, reach: Reach) -> list[dict[str, Any]]:
    """Per self-described dimension: each group's share among voices at each stage."""
    voices = {stage: set[str]() for stage in STAGES}
    voices["heard"] = {pid for pid, p in g.participants.items() if p.conversations}
    for stage, convs in (("cited", reach.cited), ("prioritised", reach.prioritised)):
        voices[stage] = {g.conversations[c].participant for c in convs}
    voices["told"] = {n.participant for n in g.notifications.values()}
    tables = []
    for d, dimension in enumerate(EQUITY_DIMENSIONS):
        if not any(p.equity and p.equity[d] for p in g.participants.values()):
            continue
        counts = {stage: Counter(_group(g, pid, d) for pid in voices[stage]) for stage in STAGES}
        totals = {stage: sum(counts[stage].values()) for stage in STAGES}
        rows = []
        for group in sorted(counts["heard"]):
            shares = {s: _share(counts[s][group], totals[s]) for s in STAGES}
            row = {"group": group, **{s: counts[s][group] for s in STAGES},
                   **{f"{s}_share": shares[s] for s in STAGES},
                   "flag": _flag(counts, totals, shares, group)}
            rows.append(row)
        tables.append({"dimension": dimension, "totals": totals, "groups": rows})
    return tables


def _group(g: InfluenceGraph, participant_id: str, dimension: int) -> str:
    p = g.participants[participant_id]
    if p.erased:
        return ERASED
    return (p.equity[dimension] if p.equity else None) or NOT_STATED


def _share(count: int, total: int) -> float | None:
    return None if total == 0 else round(count / total, 3)


def _flag(counts: dict[str, Counter[str]], totals: dict[str, int],
          shares: dict[str, float | None], group: str) -> str | None:
    heard = shares["heard"] or 0.0
    for stage in STAGES[1:]:
        if totals[stage] and counts[stage][group] == 0:
            return f"drops out before '{stage}'"
    for stage in STAGES[1:]:
        share = shares[stage]
        if share is not None and share < heard / 2:
            return f"under-represented at '{stage}' (share halves)"
    return None


def counts(g: InfluenceGraph) -> dict[str, dict[str, int]]:
    def ordered(counter: Counter[str]) -> dict[str, int]:
        return dict(counter.most_common())
    return {
        "conversations_by_category": ordered(Counter(
            k for c in g.conversations.values() for k in c.categories)),
        "conversations_by_place": ordered(Counter(c.place for c in g.conversations.values())),
        "insights_by_category": ordered(Counter(i.category for i in g.insights.values())),
        "actions_by_place": ordered(Counter(a.place for a in g.actions.values())),
        "actions_by_status": ordered(Counter(a.status for a in g.actions.values())),
        "notifications_by_channel": ordered(Counter(
            n.channel for n in g.notifications.values())),
    }


def flow(g: InfluenceGraph, reach: Reach) -> list[tuple[str, str, int]]:
    """The funnel of conversations along the thread, as (from, to, count) links."""
    total = len(g.conversations)
    steps = [("Conversations", total), ("Insights", len(reach.cited)),
             ("Priorities", len(reach.prioritised)), ("Actions", len(reach.answered)),
             ("People told", len(reach.told))]
    waiting = ("Not yet cited in an insight", "Not yet behind a priority", "No action yet",
               "Not told (yet)")
    links = []
    for (here, n), (there, m), rest in zip(steps[:-1], steps[1:], waiting, strict=True):
        if m:
            links.append((here, there, m))
        if n - m:
            links.append((here, rest, n - m))
    return links
