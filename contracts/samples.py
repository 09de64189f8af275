"""Example events built from the field examples: for documentation, tests and trust systems."""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID, uuid5

from contracts.chain import GENESIS_HASH, body_digest, chain_hash
from contracts.drafts import EventDraft
from contracts.envelope import CHAIN_FIELDS, ActorRole, Envelope
from contracts.events import type_name
from contracts.fields import example_of

_EXAMPLE_IDS: Final = UUID("6f1d9c52-8a3b-4e7f-9d10-2c4b6a8e0f13")

#: Who typically publishes each type, so examples read true (source, role, actor).
_EXAMPLE_ACTORS: Final[dict[str, tuple[str, ActorRole, str]]] = {
    "ConversationLogged": ("intake", ActorRole.COMMUNITY_LISTENER, "listener_7Hq2"),
    "ParticipantErased": ("intake", ActorRole.PARTICIPANT, "p_9f3Kx2Lm8Q"),
    "ConsentChanged": ("intake", ActorRole.PARTICIPANT, "p_9f3Kx2Lm8Q"),
    "InsightDrafted": ("insight", ActorRole.LIVED_EXPERIENCE_PARTNER, "partner_a1"),
    "PriorityAgreed": ("priority", ActorRole.LIVED_EXPERIENCE_PARTNER, "partner_a1"),
    "ActionTaken": ("priority", ActorRole.SERVICE_LEAD, "lead_3Rt9"),
    "ParticipantNotified": ("feedback", ActorRole.SYSTEM, "feedback"),
}


def example_draft(event_class: type[Envelope[Any]]) -> EventDraft[Any]:
    """A draft of `event_class` whose values are its fields' first examples."""
    name = type_name(event_class)
    fields = {k: v for k, v in example_of(event_class).items() if k not in CHAIN_FIELDS}
    source, role, actor = _EXAMPLE_ACTORS.get(name, (fields["source"], fields["actorrole"], ""))
    fields.update(id=uuid5(_EXAMPLE_IDS, name), source=source, actorrole=role)
    fields["actorid"] = actor or fields["actorid"]
    if event_class.subject_field is not None:
        fields["subject"] = str(fields["data"][event_class.subject_field])
    return EventDraft.model_validate(fields)


def example_event(
    event_class: type[Envelope[Any]], *, sequence: int = 1, prevhash: str = GENESIS_HASH
) -> Envelope[Any]:
    """The example draft, sequenced and hashed as a source's event store would."""
    draft = example_draft(event_class)
    return draft.sequenced(sequence, prevhash, chain_hash(prevhash, sequence, body_digest(draft)))
