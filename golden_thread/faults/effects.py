"""Every service's effects, counted by event id, against what a fault-free run would hold.

A scenario's window is what each store appended after the scenario began. From the stores
(the source of truth for what was accepted) follows what every consumer must have applied:
an inbox row marked applied and the read-model row it writes, and, at the end of the thread,
one ParticipantNotified and one email per (participant, action). Lost is expected but not
seen; duplicated is an effect seen more than once, or two stored events with one logical
identity (the same conversation, insight, priority or action accepted twice).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from golden_thread.faults.lab import Lab
from golden_thread.faults.load import Ledger
from services.feedback.planning import notification_id
from services.feedback.projections import UPSTREAM_TYPES

SOURCES = ("intake", "insight", "priority", "feedback")


@dataclass
class Tally:
    expected: int = 0
    seen: int = 0
    duplicated: int = 0
    unexpected: int = 0
    examples: list[str] = field(default_factory=list)
    missing: list[Any] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.seen


@dataclass
class Effects:
    by_kind: dict[str, Tally] = field(default_factory=dict)

    def add(self, kind: str, expected: Iterable[Any], seen: Iterable[Any]) -> None:
        wanted, counts = set(expected), Counter(seen)
        tally = self.by_kind.setdefault(kind, Tally())
        tally.expected += len(wanted)
        tally.seen += sum(1 for x in wanted if counts[x])
        tally.duplicated += sum(n - 1 for n in counts.values() if n > 1)
        tally.unexpected += sum(1 for x in counts if x not in wanted)
        tally.missing += sorted(wanted - set(counts), key=str)
        tally.examples += [f"{kind}: missing {x}" for x in tally.missing[:3]]

    def logical(self, kind: str, identities: Iterable[Any]) -> None:
        """Stored events that should be one: each repeat of an identity is a duplicate."""
        tally = self.by_kind.setdefault(kind, Tally())
        tally.duplicated += sum(n - 1 for n in Counter(identities).values() if n > 1)

    def total(self, attr: str) -> int:
        return sum(getattr(t, attr) for t in self.by_kind.values())

    def problems(self) -> list[str]:
        """A store may hold more than was acknowledged (a request whose answer was lost); an
        effect nobody expected anywhere else is wrong (e.g. telling someone not in the chain)."""
        return [f"{k}: {t.lost} lost, {t.duplicated} duplicated, {t.unexpected} unexpected"
                for k, t in self.by_kind.items()
                if t.lost or t.duplicated or (t.unexpected and not k.endswith(".store"))]


async def heads(lab: Lab) -> dict[str, int]:
    found = {}
    for source in SOURCES:
        rows = await lab.fetch(f"SELECT sequence FROM {source}.source_head")
        found[source] = int(rows[0]["sequence"]) if rows else 0
    return found


async def _events(lab: Lab, source: str, after: int) -> list[dict[str, Any]]:
    rows = await lab.fetch(f"SELECT event_id, event_type, body FROM {source}.events"
                           " WHERE sequence > $1 ORDER BY sequence", after)
    return [{**r["body"], "id": str(r["event_id"]), "type": r["event_type"]} for r in rows]


async def _ids(lab: Lab, sql: str, ids: Iterable[str]) -> list[str]:
    return [str(r[0]) for r in await lab.fetch(sql, list(ids))]


async def measure(lab: Lab, start: dict[str, int], ledger: Ledger) -> Effects:
    events = {s: await _events(lab, s, start[s]) for s in SOURCES[:3]}
    of = {s: {t: [e for e in events[s] if e["type"] == t] for t in {e["type"] for e in events[s]}}
          for s in events}
    effects = Effects()
    for source in SOURCES[:3]:  # what was acknowledged was stored
        effects.add(f"{source}.store", map(str, ledger.acked[source]),
                    [e["id"] for e in events[source]])
    effects.logical("intake.store", (e["data"]["setting"] for e in of["intake"].get(
        "ConversationLogged", [])))
    effects.logical("insight.store", (e["data"]["statement"] for e in of["insight"].get(
        "InsightDrafted", [])))
    effects.logical("priority.store", (e["data"]["session_id"] for e in of["priority"].get(
        "PriorityAgreed", [])))
    effects.logical("priority.store", (e["data"]["description"] for e in of["priority"].get(
        "ActionTaken", []) if e["subjectversion"] == 1))

    conversations = [e["id"] for e in of["intake"].get("ConversationLogged", [])]
    to_insight = conversations + [e["id"] for e in of["intake"].get("ParticipantErased", [])]
    insights = [e["id"] for e in of["insight"].get("InsightDrafted", [])]
    actions = [e["id"] for e in of["priority"].get("ActionTaken", [])]
    upstream = [e["id"] for s in SOURCES[:3] for e in events[s] if e["type"] in UPSTREAM_TYPES]
    inbox = "SELECT event_id FROM {}.inbox WHERE consumer = '{}' AND outcome = 'applied'" \
            " AND event_id = ANY($1::uuid[])"
    effects.add("insight.inbox", to_insight, await _ids(lab, inbox.format("insight", "insight"),
                                                        to_insight))
    effects.add("insight.conversations", conversations, await _ids(
        lab, "SELECT event_id FROM insight.conversations WHERE event_id = ANY($1::uuid[])",
        conversations))
    effects.add("priority.inbox", insights + actions, await _ids(
        lab, inbox.format("priority", "priority"), insights + actions))
    effects.add("priority.insights", insights, await _ids(
        lab, "SELECT event_id FROM priority.insights WHERE event_id = ANY($1::uuid[])", insights))
    effects.add("feedback.inbox", upstream, await _ids(lab, inbox.format("feedback", "feedback"),
                                                       upstream))
    effects.add("feedback.facts", upstream, await _ids(
        lab, "SELECT event_id FROM feedback.received_facts WHERE event_id = ANY($1::uuid[])",
        upstream))
    await _notifications(lab, effects, of)
    return effects


def expected_pairs(of: dict[str, dict[str, list[dict[str, Any]]]]) -> set[tuple[str, str]]:
    """(participant, action) pairs a fault-free run tells: every consenting voice behind each
    action, found by following the thread back through the stores."""
    data = {t: {e["subject"]: e["data"] for e in evs} for s in of.values() for t, evs in s.items()}
    people = {cid: d for cid, d in data.get("ConversationLogged", {}).items()
              if d["consent"]["to_recontact"] and d["consent"]["channel"] != "none"}
    pairs = set()
    for action in data.get("ActionTaken", {}).values():
        for pid in action["priority_ids"]:
            for iid in data.get("PriorityAgreed", {}).get(pid, {}).get("insight_ids", ()):
                for cid in data.get("InsightDrafted", {}).get(iid, {}).get("conversation_ids", ()):
                    if cid in people:
                        pairs.add((people[cid]["participant_id"], action["action_id"]))
    return pairs


async def _notifications(lab: Lab, effects: Effects,
                         of: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    pairs = expected_pairs(of)
    action_ids = sorted({a for _, a in pairs})
    told = await lab.fetch(
        "SELECT body->'data'->>'participant_id' AS p, body->'data'->>'action_id' AS a"
        " FROM feedback.events WHERE event_type = 'ParticipantNotified'"
        " AND body->'data'->>'action_id' = ANY($1::text[])", action_ids)
    effects.add("feedback.notified", pairs, [(r["p"], r["a"]) for r in told])
    by_message = {f"<{notification_id(p, UUID(a))}@": (p, a) for p, a in pairs}
    letters = [str(m.get("Message-ID", "")) for m in list(lab.mail.mailbox.messages)]
    mailed = [by_message[m.split("@")[0] + "@"] for m in letters if m.split("@")[0] + "@" in by_message]
    effects.add("feedback.emails", pairs, mailed)
