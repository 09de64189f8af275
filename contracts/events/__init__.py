"""Every public event type: payload models and their concrete envelopes."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from contracts.envelope import Envelope
from contracts.events.action import ActionTaken, ActionTakenEvent
from contracts.events.consent import Consent, RecontactConsent
from contracts.events.conversation import (
    ConversationLogged,
    ConversationLoggedEvent,
    EquityProfile,
    Sealed,
)
from contracts.events.insight import InsightDrafted, InsightDraftedEvent
from contracts.events.notification import Chain, ParticipantNotified, ParticipantNotifiedEvent
from contracts.events.participants import (
    ConsentChanged,
    ConsentChangedEvent,
    ParticipantErased,
    ParticipantErasedEvent,
)
from contracts.events.priority import AgreementRule, PriorityAgreed, PriorityAgreedEvent, Tally

#: Concrete event classes in golden-thread order.
EVENT_CLASS_LIST: tuple[type[Envelope[Any]], ...] = (
    ConversationLoggedEvent,
    ParticipantErasedEvent,
    ConsentChangedEvent,
    InsightDraftedEvent,
    PriorityAgreedEvent,
    ActionTakenEvent,
    ParticipantNotifiedEvent,
)


def type_name(event_class: type[Envelope[Any]]) -> str:
    """The event type name a concrete class carries (its `type` default)."""
    default = event_class.model_fields["type"].default
    assert isinstance(default, str)
    return default


def schema_version(event_class: type[Envelope[Any]]) -> int:
    """The schema version a concrete class carries (its `schemaversion` default)."""
    default = event_class.model_fields["schemaversion"].default
    assert isinstance(default, int)
    return default


#: Event type name -> concrete class.
EVENT_CLASSES: Mapping[str, type[Envelope[Any]]] = MappingProxyType(
    {type_name(cls): cls for cls in EVENT_CLASS_LIST}
)

__all__ = [
    "EVENT_CLASSES",
    "EVENT_CLASS_LIST",
    "ActionTaken",
    "ActionTakenEvent",
    "AgreementRule",
    "Chain",
    "Consent",
    "ConsentChanged",
    "ConsentChangedEvent",
    "ConversationLogged",
    "ConversationLoggedEvent",
    "EquityProfile",
    "InsightDrafted",
    "InsightDraftedEvent",
    "ParticipantErased",
    "ParticipantErasedEvent",
    "ParticipantNotified",
    "ParticipantNotifiedEvent",
    "PriorityAgreed",
    "PriorityAgreedEvent",
    "RecontactConsent",
    "Sealed",
    "Tally",
    "schema_version",
    "type_name",
]
