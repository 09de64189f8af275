"""The story-of-change report: one self-contained HTML file (plotly.js inlined, no network).

Aggregates only: counts, shares, times. No summaries, quotes or contact details ever reach it,
and no participant ids either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

import plotly.graph_objects as go

from golden_thread.audit.graph import InfluenceGraph
from golden_thread.audit.model import Verification
from golden_thread.audit.stats import STAGES, Reach, counts, equity, flow, pace

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1d2a33;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.6rem 0 1.2rem}td,th{padding:.25rem .7rem;
border-bottom:1px solid #e3e6ea;text-align:right}th:first-child,td:first-child{text-align:left}
.ok{color:#1b7f3b;font-weight:600}.broken{color:#b3261e;font-weight:600}
.flag{color:#b3261e}.note{color:#56636e;font-size:.9rem}
"""


def render_report(graph: InfluenceGraph, verification: Verification,
                  *, title: str = "Golden Thread: the story of change") -> str:
    reach = Reach.of(graph)
    parts = [
        f"<h1>{escape(title)}</h1>",
        _verification(verification),
        "<h2>From voices to change</h2>",
        _sankey(graph, reach),
        "<h2>Pace</h2>",
        ("<p class=note>Time between stages, from each event's own time (median and 90th "
         "percentile, in days).</p>"),
        _table(["stage", "how many", "median (days)", "90th percentile (days)"],
               [[p.stage, p.count, _num(p.median_days), _num(p.p90_days)] for p in pace(graph)]),
        "<h2>Equity: whose voices travelled</h2>",
        ("<p class=note>Share of each self-described group among the people heard, cited in "
         "insights, behind agreed priorities and told of changes. Erased people are counted as "
         "'erased'. Flagged groups drop out or lose half their share along the way.</p>"),
        *(_equity_table(table) for table in equity(graph, reach)),
        "<h2>Counts</h2>",
        *(f"<h3>{escape(name.replace('_', ' '))}</h3>" + _table(["", "count"], list(rows.items()))
          for name, rows in counts(graph).items()),
    ]
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(parts)
        + f"<p class=note>Generated {generated}. Pseudonymous, aggregate figures only.</p>"
        "</body></html>\n"
    )


def _verification(v: Verification) -> str:
    status = ("<span class=ok>verified</span>" if v.verified
              else f"<span class=broken>NOT verified: {v.breaks_total} break(s)</span>")
    as_of = "" if v.as_of is None else f" as it stood at {escape(v.as_of.isoformat())}"
    first = "" if v.first_break is None else (
        f"<p class=broken>First break: {escape(str(v.first_break))}</p>")
    return (f"<p>History{as_of}: {v.events} events from {len(v.sources)} sources, "
            f"{status}.</p>{first}")


def _sankey(graph: InfluenceGraph, reach: Reach) -> str:
    links = flow(graph, reach)
    if not links:
        return "<p class=note>No conversations in the history yet.</p>"
    labels = list(dict.fromkeys(name for a, b, _ in links for name in (a, b)))
    value = {name: 0 for name in labels}
    for a, b, n in links:
        value[b] += n
    value["Conversations"] = len(graph.conversations)
    figure = go.Figure(go.Sankey(
        arrangement="snap",
        node={"label": [f"{name} ({value[name]})" for name in labels], "pad": 18,
              "thickness": 18,
              "color": ["#9aa5b1" if name[0].islower() or name.startswith(("Not", "No "))
                        else "#2f6f9f" for name in labels]},
        link={"source": [labels.index(a) for a, _, _ in links],
              "target": [labels.index(b) for _, b, _ in links],
              "value": [n for _, _, n in links]},
    ))
    figure.update_layout(height=460, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         font={"size": 13})
    html: str = figure.to_html(full_html=False, include_plotlyjs=True, div_id="flow",
                               config={"displaylogo": False, "responsive": True})
    return html


def _equity_table(table: dict[str, Any]) -> str:
    header = ["group", *(f"{s} (share)" for s in STAGES), "flag"]
    rows = [[row["group"], *(f"{row[s]} ({_pct(row[f'{s}_share'])})" for s in STAGES),
             row["flag"] or ""] for row in table["groups"]]
    totals = table["totals"]
    rows.append(["all", *(str(totals[s]) for s in STAGES), ""])
    return f"<h3>{escape(table['dimension'].replace('_', ' '))}</h3>" + _table(header, rows)


def _table(header: list[str], rows: list[list[Any]] | list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    text = escape(str(value))
    cls = " class=flag" if isinstance(value, str) and value.startswith(("drops", "under")) else ""
    return f"<td{cls}>{text}</td>"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"
