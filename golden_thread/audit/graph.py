"""The influence graph, rebuilt event by event: conversations → insights → priorities → actions →
people told. It also checks that every causation id names something seen, and that every
ParticipantNotified leads back to a ConversationLogged of the person told.

Columnar: each kind of entity is a `UuidTable` (id → dense number) and arrays indexed by that
number; participant ids are numbered once (`TextTable`); codes and names are interned. `views`
reads it back as mappings of small objects for `trace`, `stats` and `report`.
"""

from __future__ import annotations

from array import array
from typing import Any

from golden_thread.audit.columns import Interned, RefLists, TextTable, UuidTable
from golden_thread.audit.model import AuditBreak, BreakKind
from golden_thread.audit.nodes import EventIndex, Key, show
from golden_thread.audit.record import (
    ACTION,
    CONVERSATION,
    ERASED,
    INSIGHT,
    NOTIFICATION,
    PRIORITY,
    Rec,
)
from golden_thread.audit.views import GraphViews

Profile = tuple[str | None, ...]


class InfluenceGraph(GraphViews):
    """Compact, pure state folded from a replay; queried by `trace` and `stats`."""

    def __init__(self, *, clock_skew_s: float = 5.0) -> None:
        self.index = EventIndex()
        self.names: Interned[Any] = Interned()  # places, codes, category sets, equity profiles
        self.people = TextTable()  # every participant id named anywhere
        self.p_node: array[int] = array("i")  # -1: named, but no event of theirs seen
        self.p_equity: array[int] = array("i")  # number in `names`, or -1
        self.p_erased = bytearray()
        self.p_conversations: array[int] = array("I")
        self.convs = UuidTable()
        self.c_node: array[int] = array("i")
        self.c_participant: array[int] = array("i")
        self.c_categories: array[int] = array("i")
        self.c_place: array[int] = array("i")
        self.c_time: array[float] = array("d")
        self.notes = UuidTable()
        self.n_node: array[int] = array("i")
        self.n_participant: array[int] = array("i")
        self.n_action = RefLists()
        self.n_conversations = RefLists()
        self.n_channel: array[int] = array("i")
        self.n_time: array[float] = array("d")
        self.ins = UuidTable()
        self.i_node: array[int] = array("i")  # the latest revision's event
        self.i_conversations = RefLists()
        self.i_category: array[int] = array("i")
        self.i_time: array[float] = array("d")  # first drafted
        self.i_revision: array[int] = array("q")
        self.i_revised: array[float] = array("d")  # this revision
        self.pri = UuidTable()
        self.r_node: array[int] = array("i")
        self.r_insights = RefLists()
        self.r_time: array[float] = array("d")
        self.act = UuidTable()
        self.a_node: array[int] = array("i")  # the first version's event
        self.a_priorities = RefLists()
        self.a_time: array[float] = array("d")  # first recorded
        self.a_names: array[int] = array("i")  # status, place, service, framework (4 each)
        self._pending: dict[Key, list[int]] = {}  # cited id not seen yet -> citing event nodes
        self._skew = clock_skew_s

    def position(self, event_id: int) -> tuple[str, int, bytes] | None:
        node = self.index.node(event_id)
        return None if node < 0 else self.index.position(node)

    def add(self, rec: Rec) -> list[AuditBreak]:
        """Fold one event in (in its source's order); return what it breaks at once."""
        recorded = rec.recorded
        node = self.index.add(rec.id, rec.source, rec.sequence, rec.hash, recorded)
        if node < 0:
            source, sequence, _ = self.index.position(-1 - node)
            return [AuditBreak(BreakKind.CONFLICT, rec.source, rec.sequence, show(rec.id),
                               f"event id already used by {source} #{sequence}", recorded)]
        introduced = self._fold(node, rec.kind, rec.data)
        introduced.append(rec.id)
        breaks: list[AuditBreak] = []
        if self._pending:
            for k in introduced:
                breaks.extend(self._resolve(k, node))
        for i, key in enumerate(rec.causes):
            found = self._recorded_of(key)
            if found is None:
                self._pending.setdefault(key, []).append(node)
            elif found > recorded + self._skew:
                breaks.append(self._later(node, rec.cited[i] if rec.cited else show(key)))
        return breaks

    def finish(self) -> list[AuditBreak]:
        """What can only be judged once the whole history is in."""
        breaks = [
            self._node_break(BreakKind.CAUSATION, node,
                             f"causation id {show(key)} names no event or entity in the history")
            for key, nodes in self._pending.items() for node in nodes
        ]
        self._pending.clear()
        for n in range(len(self.notes)):
            reason = self._unfounded(n)
            if reason is not None:
                breaks.append(self._node_break(BreakKind.NOTIFICATION, self.n_node[n], reason))
        return breaks

    def _fold(self, node: int, kind: int, data: tuple[Any, ...]) -> list[Key]:
        """Add the payload's node; return the entity ids this event introduces."""
        if kind == CONVERSATION:
            return self._conversation(node, data)
        if kind == INSIGHT:
            self._insight(node, data)
            return [data[0]]
        if kind == PRIORITY:
            key, insights, time = data
            n = self.pri.put(key)
            if n >= 0:
                self.r_node.append(node)
                self.r_insights.append(insights)
                self.r_time.append(time)
            else:
                n = -1 - n
                self.r_node[n], self.r_time[n] = node, time
                self.r_insights.set(n, insights)
            return [key]
        if kind == ACTION:
            self._action(node, data)
            return [data[0]]
        if kind == NOTIFICATION:
            return self._notification(node, data)
        participant_id: str = data[0]
        p = self._participant(node, participant_id)
        if kind == ERASED:
            self.p_erased[p] = 1
        return [participant_id]

    def _insight(self, node: int, data: tuple[Any, ...]) -> None:
        key, conversations, category, revision, time = data
        n = self.ins.put(key)
        if n >= 0:
            self.i_node.append(node)
            self.i_conversations.append(conversations)
            self.i_category.append(self.names.number(category))
            self.i_time.append(time)
            self.i_revision.append(revision)
            self.i_revised.append(time)
        else:  # a revision: the first draft's time stays
            n = -1 - n
            self.i_node[n], self.i_category[n] = node, self.names.number(category)
            self.i_conversations.set(n, conversations)
            self.i_revision[n], self.i_revised[n] = revision, time

    def _action(self, node: int, data: tuple[Any, ...]) -> None:
        key, priorities, time, *names = data  # status, place, service, framework
        numbers = [self.names.number(name) for name in names]
        n = self.act.put(key)
        if n >= 0:
            self.a_node.append(node)
            self.a_priorities.append(priorities)
            self.a_time.append(time)
            self.a_names.extend(numbers)
        else:  # a later version: the first one's event and time stay
            n = -1 - n
            self.a_priorities.set(n, priorities)
            self.a_names[4 * n:4 * n + 4] = array("i", numbers)

    def _conversation(self, node: int, data: tuple[Any, ...]) -> list[Key]:
        key, participant_id, given, categories, place, time = data
        p = self._participant(node, participant_id)
        self.p_conversations[p] += 1
        if given is not None:
            was = self.p_equity[p]
            if was >= 0:  # a returning participant: newer answers win, older ones stay
                old: Profile = self.names.values[was]
                given = tuple(new if new is not None else before
                              for new, before in zip(given, old, strict=True))
            self.p_equity[p] = self.names.number(given)
        category_set, place_name = self.names.number(categories), self.names.number(place)
        n = self.convs.put(key)
        if n >= 0:
            self.c_node.append(node)
            self.c_participant.append(p)
            self.c_categories.append(category_set)
            self.c_place.append(place_name)
            self.c_time.append(time)
        else:
            n = -1 - n
            self.c_node[n], self.c_participant[n], self.c_time[n] = node, p, time
            self.c_categories[n], self.c_place[n] = category_set, place_name
        return [key, participant_id]

    def _notification(self, node: int, data: tuple[Any, ...]) -> list[Key]:
        key, participant_id, action, conversations, channel, time = data
        p = self._person(participant_id)
        n = self.notes.find(key)
        if n < 0:
            self.notes.add(key)
            self.n_node.append(node)
            self.n_participant.append(p)
            self.n_action.append((action,))
            self.n_conversations.append(conversations)
            self.n_channel.append(self.names.number(channel))
            self.n_time.append(time)
        else:
            self.n_node[n], self.n_participant[n] = node, p
            self.n_action.set(n, (action,))
            self.n_conversations.set(n, conversations)
            self.n_channel[n], self.n_time[n] = self.names.number(channel), time
        return [key]

    def _participant(self, node: int, participant_id: str) -> int:
        p = self._person(participant_id)
        if self.p_node[p] < 0:
            self.p_node[p] = node
        return p

    def _person(self, participant_id: str) -> int:
        p = self.people.number(participant_id)
        if p == len(self.p_node):
            self.p_node.append(-1)
            self.p_equity.append(-1)
            self.p_erased.append(0)
            self.p_conversations.append(0)
        return p

    def _recorded_of(self, key: Key) -> float | None:
        node = self.index.node(key) if isinstance(key, int) else -1
        if node < 0:
            node = self._entity_node(key)
        return None if node < 0 else self.index.recorded(node)

    def _entity_node(self, key: Key) -> int:
        if isinstance(key, str):
            p = self.people.find(key)
            return -1 if p < 0 else self.p_node[p]
        n = self.convs.find(key)
        if n >= 0:
            return self.c_node[n]
        for table, nodes in ((self.ins, self.i_node), (self.pri, self.r_node),
                             (self.act, self.a_node)):
            n = table.find(key)
            if n >= 0:
                return nodes[n]
        n = self.notes.find(key)
        return -1 if n < 0 else self.n_node[n]

    def _resolve(self, key: Key, node: int) -> list[AuditBreak]:
        """`key` has just appeared: the events that cited it before are answered."""
        citing = self._pending.pop(key, None)
        if not citing:
            return []
        recorded = self.index.recorded(node)
        return [self._later(c, show(key)) for c in citing
                if recorded > self.index.recorded(c) + self._skew]

    def _later(self, node: int, cited: str) -> AuditBreak:
        return self._node_break(BreakKind.CAUSATION, node,
                                f"causation id {cited} names an event recorded after this one")

    def _unfounded(self, n: int) -> str | None:
        if self.act.find(self.n_action.get(n)[0]) < 0:
            return "ParticipantNotified names an action that was never taken"
        theirs = [c for c in (self.convs.find(k) for k in self.n_conversations.get(n)) if c >= 0]
        if not theirs:
            return "ParticipantNotified leads back to no ConversationLogged"
        if all(self.c_participant[c] != self.n_participant[n] for c in theirs):
            return "ParticipantNotified leads back to no ConversationLogged of the person told"
        return None

    def _node_break(self, kind: BreakKind, node: int, reason: str) -> AuditBreak:
        source, sequence, _ = self.index.position(node)
        return AuditBreak(kind, source, sequence, self.index.event_id(node), reason,
                          self.index.recorded(node))

