"""Every event type by name, and parsing raw messages into typed events."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, Final, cast

from pydantic import Field, TypeAdapter, ValidationError

from contracts.drafts import EventDraft, new_event
from contracts.events import (
    EVENT_CLASSES,
    ActionTakenEvent,
    ConsentChangedEvent,
    ConversationLoggedEvent,
    InsightDraftedEvent,
    ParticipantErasedEvent,
    ParticipantNotifiedEvent,
    PriorityAgreedEvent,
    schema_version,
)
from contracts.problems import ContractError, Problem, problems_from

#: Largest message accepted, in bytes of UTF-8 JSON.
MAX_EVENT_BYTES: Final = 1024 * 1024

AnyEvent = Annotated[
    ConversationLoggedEvent
    | ParticipantErasedEvent
    | ConsentChangedEvent
    | InsightDraftedEvent
    | PriorityAgreedEvent
    | ActionTakenEvent
    | ParticipantNotifiedEvent,
    Field(discriminator="type"),
]


@cache
def event_adapter() -> TypeAdapter[AnyEvent]:
    adapter: TypeAdapter[AnyEvent] = TypeAdapter(cast(Any, AnyEvent))
    return adapter


def parse_event(raw: bytes | str) -> AnyEvent:
    """Validate one JSON message into its event class, or raise ContractError.

    The error names each wrong field and why, and never repeats the values sent.
    """
    if _too_large(raw):
        raise ContractError([Problem(field="body", problem="too large")])
    try:
        return event_adapter().validate_json(raw)
    except ValidationError as exc:
        problems = _diagnose(raw, exc)
    # Raised outside the except block so the ValidationError (which holds input) is not chained.
    raise ContractError(problems)


def _too_large(raw: bytes | str) -> bool:
    if isinstance(raw, bytes):
        return len(raw) > MAX_EVENT_BYTES
    # A character is at most 4 UTF-8 bytes: encode only when the length alone cannot tell.
    return len(raw) > MAX_EVENT_BYTES or (
        len(raw) * 4 > MAX_EVENT_BYTES and len(raw.encode("utf-8")) > MAX_EVENT_BYTES
    )


def _diagnose(raw: bytes | str, exc: ValidationError) -> list[Problem]:
    if any(error["type"] == "json_invalid" for error in exc.errors(include_input=False)):
        return [Problem(field="body", problem="not valid JSON")]
    try:
        message: Any = json.loads(raw)
    except ValueError:  # valid for pydantic, not for json (e.g. a huge integer)
        return problems_from(exc)
    if not isinstance(message, dict):
        return [Problem(field="body", problem="must be a JSON object")]
    type_name = message.get("type")
    if type_name is None:
        return [Problem(field="type", problem="missing event type")]
    if not isinstance(type_name, str) or type_name not in EVENT_CLASSES:
        return [Problem(field="type", problem="unknown event type")]
    problems = problems_from(exc, tag=type_name)
    supported = schema_version(EVENT_CLASSES[type_name])
    version = message.get("schemaversion", supported)
    if version != supported or isinstance(version, bool):
        plain = isinstance(version, int) and not isinstance(version, bool) and 0 < version < 10**6
        shown = f" {version}" if plain else ""
        problems = [p for p in problems if p.field != "schemaversion"]
        problems.insert(
            0,
            Problem(
                field="schemaversion",
                problem=f"unsupported version{shown} for {type_name}; supported: {supported}",
            ),
        )
    return problems


__all__ = [
    "EVENT_CLASSES",
    "MAX_EVENT_BYTES",
    "AnyEvent",
    "ContractError",
    "EventDraft",
    "Problem",
    "event_adapter",
    "new_event",
    "parse_event",
]
