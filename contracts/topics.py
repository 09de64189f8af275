"""Kafka topics, named `<source>.<stream>.v<N>`. The message key is the event's subject."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from contracts.envelope import EventContext

CONVERSATIONS: Final = "intake.conversations.v1"
PARTICIPANTS: Final = "intake.participants.v1"
INSIGHTS: Final = "insight.insights.v1"
PRIORITIES: Final = "priority.priorities.v1"
ACTIONS: Final = "priority.actions.v1"
NOTIFICATIONS: Final = "feedback.notifications.v1"

PUBLIC_TOPICS: Final = (CONVERSATIONS, PARTICIPANTS, INSIGHTS, PRIORITIES, ACTIONS, NOTIFICATIONS)

TOPIC_BY_TYPE: Mapping[str, str] = MappingProxyType(
    {
        "ConversationLogged": CONVERSATIONS,
        "ParticipantErased": PARTICIPANTS,
        "ConsentChanged": PARTICIPANTS,
        "InsightDrafted": INSIGHTS,
        "PriorityAgreed": PRIORITIES,
        "ActionTaken": ACTIONS,
        "ParticipantNotified": NOTIFICATIONS,
    }
)

#: Consumers that each own a dead-letter topic.
CONSUMERS: Final = ("intake", "insight", "priority", "feedback", "audit")


def dead_letter_topic(consumer: str) -> str:
    return f"{consumer}.deadletter.v1"


ALL_TOPICS: Final[tuple[str, ...]] = PUBLIC_TOPICS + tuple(map(dead_letter_topic, CONSUMERS))


def message_key(event: EventContext) -> bytes:
    """Kafka key of an event: its subject, so one aggregate's events stay in order."""
    return event.subject.encode("utf-8")
