"""The golden thread walked backwards: from an action to the voices that fed it.

An `ActionGraph` is whatever is known so far around one action; links whose far end has not
arrived yet simply lead nowhere, so the same rules serve a complete and a partial graph, and a
late event only ever adds threads.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, TypeVar
from uuid import UUID

ActionStatus = Literal["planned", "in_progress", "done"]
STATUS_ORDER: Mapping[str, int] = {"planned": 0, "in_progress": 1, "done": 2}
T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class ActionNode:
    action_id: UUID
    priority_ids: tuple[UUID, ...]
    status: ActionStatus
    description: str
    service: str
    place: str
    framework: str
    framework_area: str
    event_id: UUID


@dataclass(frozen=True)
class InsightNode:
    insight_id: UUID
    category: str
    conversation_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class ConversationNode:
    conversation_id: UUID
    participant_id: str
    categories: tuple[str, ...]
    event_id: UUID


@dataclass(frozen=True)
class ParticipantNode:
    participant_id: str
    to_recontact: bool
    channel: str
    earliest_contact_on: date | None
    erased: bool

    @property
    def may_be_told(self) -> bool:
        return self.to_recontact and not self.erased and self.channel in ("email", "peer_in_person")


@dataclass(frozen=True)
class ActionGraph:
    action: ActionNode
    priority_insights: Mapping[UUID, tuple[UUID, ...]] = field(default_factory=dict)
    insights: Mapping[UUID, InsightNode] = field(default_factory=dict)
    conversations: Mapping[UUID, ConversationNode] = field(default_factory=dict)
    participants: Mapping[str, ParticipantNode] = field(default_factory=dict)


@dataclass(frozen=True)
class Thread:
    """One participant's part of the golden thread to one action."""

    participant_id: str
    priority_ids: tuple[UUID, ...]
    insight_ids: tuple[UUID, ...]
    conversation_ids: tuple[UUID, ...]
    conversation_event_ids: tuple[UUID, ...]
    points: tuple[str, ...]


@dataclass(frozen=True)
class Recipient:
    participant_id: str
    channel: str
    due_on: date | None


def is_notifiable(status: str, notify_from: str) -> bool:
    """Whether an action at `status` has got far enough to tell people about."""
    return STATUS_ORDER[status] >= STATUS_ORDER[notify_from]


def threads(graph: ActionGraph) -> dict[str, Thread]:
    """Every participant reached by a complete path action -> priority -> insight -> conversation."""
    paths: dict[str, list[tuple[UUID, InsightNode, ConversationNode]]] = {}
    for priority_id in graph.action.priority_ids:
        for insight_id in graph.priority_insights.get(priority_id, ()):
            insight = graph.insights.get(insight_id)
            for conversation_id in insight.conversation_ids if insight else ():
                conversation = graph.conversations.get(conversation_id)
                if insight is not None and conversation is not None:
                    paths.setdefault(conversation.participant_id, []).append(
                        (priority_id, insight, conversation))
    return {pid: _thread(pid, found) for pid, found in paths.items()}


def _thread(pid: str, paths: list[tuple[UUID, InsightNode, ConversationNode]]) -> Thread:
    conversations = _unique(c for _, _, c in paths)
    return Thread(
        participant_id=pid,
        priority_ids=tuple(_unique(p for p, _, _ in paths)),
        insight_ids=tuple(_unique(i.insight_id for _, i, _ in paths)),
        conversation_ids=tuple(c.conversation_id for c in conversations),
        conversation_event_ids=tuple(c.event_id for c in conversations),
        points=points_answered([(i, c) for _, i, c in paths]),
    )


def points_answered(paths: list[tuple[InsightNode, ConversationNode]]) -> tuple[str, ...]:
    """Their points the thread covers: their conversation categories that an insight citing
    that conversation is about; if an insight filed them under another heading, that heading."""
    matched = {i.category for i, c in paths if i.category in c.categories}
    return tuple(sorted(matched or {i.category for i, _ in paths}))


def recipients(graph: ActionGraph, notify_from: str) -> list[Recipient]:
    """Who is to be told about this action: reached, consenting to be told, not erased."""
    if not is_notifiable(graph.action.status, notify_from):
        return []
    found = []
    for pid in sorted(threads(graph)):
        person = graph.participants.get(pid)
        if person is not None and person.may_be_told:
            found.append(Recipient(pid, person.channel, person.earliest_contact_on))
    return found


def _unique(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))
