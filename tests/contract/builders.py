"""Builders for contract tests: real events with random ids, sequenced like an event store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import uuid4

from contracts import (
    GENESIS_HASH,
    ActorRole,
    ConversationLogged,
    ConversationLoggedEvent,
    Envelope,
    EventDraft,
    body_digest,
    chain_hash,
    new_event,
)
from contracts.fields import example_of


def conversation(**overrides: Any) -> ConversationLogged:
    fields = example_of(ConversationLogged) | {"conversation_id": uuid4()} | overrides
    return ConversationLogged.model_validate(fields)


def conversation_draft(source: str = "intake") -> EventDraft[ConversationLogged]:
    return new_event(
        ConversationLoggedEvent,
        data=conversation(),
        source=source,
        subjectversion=1,
        actorid=f"listener_{uuid4().hex[:8]}",
        actorrole=ActorRole.COMMUNITY_LISTENER,
        correlationid=str(uuid4()),
    )


def sequence_all(
    drafts: Iterable[EventDraft[Any]], *, start: int = 1, prevhash: str = GENESIS_HASH
) -> list[Envelope[Any]]:
    """Sequence and chain drafts exactly as a source's event store appends them."""
    events = []
    for sequence, draft in enumerate(drafts, start=start):
        hash_ = chain_hash(prevhash, sequence, body_digest(draft))
        events.append(draft.sequenced(sequence, prevhash, hash_))
        prevhash = hash_
    return events
