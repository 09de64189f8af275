"""The influence graph, rebuilt event by event: conversations → insights → priorities → actions →
people told. It also checks that every causation id names something seen, and that every
ParticipantNotified leads back to a ConversationLogged of the person told.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from contracts.envelope import Envelope
from contracts.events import (
    ActionTaken,
    ConversationLogged,
    InsightDrafted,
    ParticipantErased,
    ParticipantNotified,
    PriorityAgreed,
)
from golden_thread.audit.model import AuditBreak, BreakKind
from golden_thread.audit.nodes import (
    EQUITY_DIMENSIONS,
    Action,
    Conversation,
    EventIndex,
    Insight,
    Key,
    Notification,
    Participant,
    Priority,
    intern,
    key_of,
    show,
)


class InfluenceGraph:
    """Compact, pure state folded from a replay; queried by `trace` and `stats`."""

    def __init__(self, *, clock_skew_s: float = 5.0) -> None:
        self.index = EventIndex()
        self.participants: dict[str, Participant] = {}
        self.conversations: dict[int, Conversation] = {}
        self.insights: dict[int, Insight] = {}
        self.priorities: dict[int, Priority] = {}
        self.actions: dict[int, Action] = {}
        self.notifications: dict[int, Notification] = {}
        self._pending: dict[Key, list[int]] = {}  # cited id not seen yet -> citing event nodes
        self._shared: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}
        self._skew = clock_skew_s

    def position(self, event_id: UUID) -> tuple[str, int, bytes] | None:
        node = self.index.node(event_id.int)
        return None if node is None else self.index.position(node)

    def add(self, event: Envelope[Any]) -> list[AuditBreak]:
        """Fold one event in (in its source's order); return what it breaks at once."""
        recorded = event.recordedtime.timestamp()
        known = self.index.node(event.id.int)
        if known is not None:
            source, sequence, _ = self.index.position(known)
            return [self._break(BreakKind.CONFLICT, event, recorded,
                                f"event id already used by {source} #{sequence}")]
        node = self.index.add(event.id.int, event.source, event.sequence, event.hash, recorded)
        introduced = self._fold(node, event.data, event.time.timestamp())
        introduced.append(event.id.int)
        breaks = [b for k in introduced for b in self._resolve(k, node)]
        for cited in event.causationids:
            found = self._recorded_of(key_of(cited))
            if found is None:
                self._pending.setdefault(key_of(cited), []).append(node)
            elif found > recorded + self._skew:
                breaks.append(self._later(node, cited))
        return breaks

    def finish(self) -> list[AuditBreak]:
        """What can only be judged once the whole history is in."""
        breaks = [
            self._node_break(BreakKind.CAUSATION, node,
                             f"causation id {show(key)} names no event or entity in the history")
            for key, nodes in self._pending.items() for node in nodes
        ]
        self._pending.clear()
        for notification in self.notifications.values():
            reason = self._unfounded(notification)
            if reason is not None:
                breaks.append(self._node_break(BreakKind.NOTIFICATION, notification.node, reason))
        return breaks

    def _fold(self, node: int, data: Any, time: float) -> list[Key]:
        """Add the payload's node; return the entity ids this event introduces."""
        if isinstance(data, ConversationLogged):
            return self._conversation(node, data, time)
        if isinstance(data, InsightDrafted):
            key = data.insight_id.int
            first = self.insights.get(key)
            self.insights[key] = Insight(node, tuple(c.int for c in data.conversation_ids),
                                         intern(data.category),
                                         time if first is None else first.time, data.revision,
                                         time)
            return [key]
        if isinstance(data, PriorityAgreed):
            key = data.priority_id.int
            self.priorities[key] = Priority(node, tuple(i.int for i in data.insight_ids), time)
            return [key]
        if isinstance(data, ActionTaken):
            return self._action(node, data, time)
        if isinstance(data, ParticipantNotified):
            key = data.notification_id.int
            self.notifications[key] = Notification(
                node, data.participant_id, data.action_id.int,
                tuple(c.int for c in data.chain.conversation_ids), data.channel, time)
            return [key]
        participant = self._participant(node, str(data.participant_id))
        if isinstance(data, ParticipantErased):
            participant.erased = True
        return [participant_key(data.participant_id)]

    def _conversation(self, node: int, data: ConversationLogged, time: float) -> list[Key]:
        participant = self._participant(node, data.participant_id)
        participant.conversations += 1
        if data.equity is not None:
            given = tuple(getattr(data.equity, d) for d in EQUITY_DIMENSIONS)
            old = participant.equity or (None,) * len(EQUITY_DIMENSIONS)
            merged = tuple(new if new is not None else was
                           for new, was in zip(given, old, strict=True))
            participant.equity = self._share(merged)
        key = data.conversation_id.int
        self.conversations[key] = Conversation(
            node, data.participant_id, self._share(data.categories), intern(data.place), time)
        return [key, participant_key(data.participant_id)]

    def _action(self, node: int, data: ActionTaken, time: float) -> list[Key]:
        key = data.action_id.int
        first = self.actions.get(key)
        self.actions[key] = Action(
            node if first is None else first.node, tuple(p.int for p in data.priority_ids),
            time if first is None else first.time, data.status, intern(data.place),
            intern(data.service), intern(data.framework))
        return [key]

    def _participant(self, node: int, participant_id: str) -> Participant:
        found = self.participants.get(participant_id)
        if found is None:
            found = self.participants[participant_id] = Participant(node)
        return found

    def _share(self, values: tuple[str | None, ...]) -> tuple[Any, ...]:
        """One copy of each equity profile or category set: most people share them."""
        return self._shared.setdefault(values, values)

    def _recorded_of(self, key: Key) -> float | None:
        node = self.index.node(key) if isinstance(key, int) else None
        if node is None:
            node = self._entity_node(key)
        return None if node is None else self.index.recorded(node)

    def _entity_node(self, key: Key) -> int | None:
        if isinstance(key, str):
            participant = self.participants.get(key)
            return None if participant is None else participant.node
        for table in (self.conversations, self.insights, self.priorities, self.actions,
                      self.notifications):
            entity = table.get(key)
            if entity is not None:
                return entity.node
        return None

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

    def _unfounded(self, told: Notification) -> str | None:
        if told.action not in self.actions:
            return "ParticipantNotified names an action that was never taken"
        theirs = [c for c in told.conversations if c in self.conversations]
        if not theirs:
            return "ParticipantNotified leads back to no ConversationLogged"
        if all(self.conversations[c].participant != told.participant for c in theirs):
            return "ParticipantNotified leads back to no ConversationLogged of the person told"
        return None

    def _node_break(self, kind: BreakKind, node: int, reason: str) -> AuditBreak:
        source, sequence, _ = self.index.position(node)
        return AuditBreak(kind, source, sequence, self.index.event_id(node), reason,
                          self.index.recorded(node))

    def _break(self, kind: BreakKind, event: Envelope[Any], recorded: float,
               reason: str) -> AuditBreak:
        return AuditBreak(kind, event.source, event.sequence, str(event.id), reason, recorded)


def participant_key(participant_id: str) -> Key:
    return participant_id
