"""Trace the golden thread through the graph: an action back to the voices behind it and the
people told; a participant forward to everything their words reached. Pseudonymous ids only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from golden_thread.audit.graph import InfluenceGraph
from golden_thread.audit.nodes import Conversation, Insight, show

Json = dict[str, Any]


class NotInHistory(LookupError):
    """The id names nothing in the history (as it stood at --as-of, if given)."""


def trace_action(graph: InfluenceGraph, action_id: str) -> Json:
    key = _uuid_key(action_id, "action")
    action = graph.actions.get(key)
    if action is None:
        raise NotInHistory(f"action {action_id} is not in the history")
    priorities: list[Json] = []
    for pkey in action.priorities:
        priority = graph.priorities.get(pkey)
        insights = [] if priority is None else [
            _insight(graph, ikey) for ikey in priority.insights
        ]
        priorities.append({"priority_id": show(pkey), "found": priority is not None,
                           "agreed": None if priority is None else _iso(priority.time),
                           "insights": insights})
    told = [_notification(graph, nkey) for nkey, n in graph.notifications.items()
            if n.action == key]
    voices = {c["participant_id"] for p in priorities for i in p["insights"]
              for c in i["conversations"] if c["found"]}
    return {
        "action_id": action_id, "recorded": _iso(action.time), "status": action.status,
        "service": action.service, "place": action.place, "framework": action.framework,
        "priorities": priorities, "told": told,
        "voices": len(voices), "told_count": len(told),
    }


def trace_participant(graph: InfluenceGraph, participant_id: str) -> Json:
    participant = graph.participants.get(participant_id)
    if participant is None:
        raise NotInHistory(f"participant {participant_id} is not in the history")
    conversations = {k for k, c in graph.conversations.items() if c.participant == participant_id}
    insights = {k: i for k, i in graph.insights.items() if conversations & set(i.conversations)}
    priorities = {k: p for k, p in graph.priorities.items() if insights.keys() & set(p.insights)}
    actions = {k: a for k, a in graph.actions.items() if priorities.keys() & set(a.priorities)}
    told = [_notification(graph, k) for k, n in graph.notifications.items()
            if n.participant == participant_id]
    return {
        "participant_id": participant_id,
        "erased": participant.erased,
        "conversations": [_conversation(graph, k) for k in sorted(
            conversations, key=lambda k: graph.conversations[k].time)],
        "insights": [{"insight_id": show(k), "revision": i.revision, "category": i.category,
                      "drafted": _iso(i.time),
                      "their_conversations": [show(c) for c in i.conversations
                                              if c in conversations]}
                     for k, i in insights.items()],
        "priorities": [{"priority_id": show(k), "agreed": _iso(p.time),
                        "insight_ids": [show(i) for i in p.insights if i in insights]}
                       for k, p in priorities.items()],
        "actions": [{"action_id": show(k), "recorded": _iso(a.time), "status": a.status,
                     "service": a.service, "place": a.place,
                     "priority_ids": [show(p) for p in a.priorities if p in priorities]}
                    for k, a in actions.items()],
        "notifications": told,
    }


def _insight(graph: InfluenceGraph, key: int) -> Json:
    insight: Insight | None = graph.insights.get(key)
    if insight is None:
        return {"insight_id": show(key), "found": False, "conversations": []}
    return {"insight_id": show(key), "found": True, "revision": insight.revision,
            "category": insight.category, "drafted": _iso(insight.time),
            "conversations": [_conversation(graph, c) for c in insight.conversations]}


def _conversation(graph: InfluenceGraph, key: int) -> Json:
    found: Conversation | None = graph.conversations.get(key)
    if found is None:
        return {"conversation_id": show(key), "found": False, "participant_id": None}
    participant = graph.participants.get(found.participant)
    return {"conversation_id": show(key), "found": True, "participant_id": found.participant,
            "erased": bool(participant and participant.erased), "logged": _iso(found.time),
            "place": found.place, "categories": list(found.categories)}


def _notification(graph: InfluenceGraph, key: int) -> Json:
    n = graph.notifications[key]
    return {"notification_id": show(key), "participant_id": n.participant,
            "action_id": show(n.action), "channel": n.channel, "told": _iso(n.time)}


def _uuid_key(text: str, what: str) -> int:
    try:
        return UUID(text).int
    except ValueError:
        raise NotInHistory(f"{what} id must be a UUID") from None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def render_action(found: Json) -> str:
    lines = [(f"action {found['action_id']} ({found['status']}, {found['service']}, "
              f"{found['place']}) recorded {found['recorded']}")]
    for p in found["priorities"]:
        lines.append(f"  ← priority {p['priority_id']} agreed {p['agreed'] or '(not in history)'}")
        for i in p["insights"]:
            lines.append(f"    ← insight {i['insight_id']} [{i.get('category', '?')}]")
            for c in i["conversations"]:
                who = c["participant_id"] or "(not in history)"
                erased = " (erased)" if c.get("erased") else ""
                lines.append(f"      ← conversation {c['conversation_id']} by {who}{erased}")
    lines.append(f"  told {found['told_count']} of {found['voices']} voices:")
    lines += [f"    → {t['participant_id']} by {t['channel']} on {t['told']}" for t in found["told"]]
    return "\n".join(lines)


def render_participant(found: Json) -> str:
    erased = " (erased: their words are unreadable)" if found["erased"] else ""
    lines = [f"participant {found['participant_id']}{erased}",
             f"  {len(found['conversations'])} conversation(s)"]
    lines += [f"    {c['conversation_id']} {c['logged']} {','.join(c['categories'])}"
              for c in found["conversations"]]
    for title, items, key in (("insight", found["insights"], "insight_id"),
                              ("priority", found["priorities"], "priority_id"),
                              ("action", found["actions"], "action_id")):
        lines.append(f"  reached {len(items)} {title}(s)")
        lines += [f"    {item[key]}" for item in items]
    lines.append(f"  told {len(found['notifications'])} time(s)")
    lines += [f"    about action {n['action_id']} by {n['channel']} on {n['told']}"
              for n in found["notifications"]]
    return "\n".join(lines)
