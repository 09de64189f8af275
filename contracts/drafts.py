"""Events before sequencing: everything but the chain fields, which the event store assigns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Generic, cast
from uuid import UUID, uuid4

from pydantic import BaseModel, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from contracts.envelope import ActorRole, DataT, Envelope, EventContext, check_subject
from contracts.events import EVENT_CLASSES, schema_version


def payload_class(event_class: type[Envelope[Any]]) -> type[BaseModel]:
    annotation = event_class.model_fields["data"].annotation
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation


def _event_class(type_name: object) -> type[Envelope[Any]]:
    event_class = EVENT_CLASSES.get(type_name) if isinstance(type_name, str) else None
    if event_class is None:
        raise PydanticCustomError("unknown_event_type", "unknown event type")
    return event_class


class EventDraft(EventContext, Generic[DataT]):
    """An event of a known type, validated, waiting for its source's sequence and hash.

    `contracts.chain.canonical_body` gives the same bytes for a draft and its sequenced event.
    """

    data: DataT = Field(description="The event payload.")

    @field_validator("data", mode="before")
    @classmethod
    def _payload_of_the_type(cls, value: Any, info: ValidationInfo) -> Any:
        return payload_class(_event_class(info.data.get("type"))).model_validate(value)

    def _check(self) -> None:
        event_class = _event_class(self.type)
        if self.schemaversion != schema_version(event_class):
            raise PydanticCustomError("unsupported_version", "unsupported schemaversion")
        check_subject(event_class, self.subject, self.data)

    def sequenced(self, sequence: int, prevhash: str, hash: str) -> Envelope[DataT]:
        """The event as appended: this draft plus the chain fields the store assigned."""
        fields = dict(self)
        fields.update(sequence=sequence, prevhash=prevhash, hash=hash)
        return cast(Envelope[DataT], _event_class(self.type).model_validate(fields))


def new_event(
    cls: type[Envelope[DataT]],
    *,
    data: DataT,
    source: str,
    actorid: str,
    actorrole: ActorRole,
    correlationid: str,
    subjectversion: int,
    subject: str | None = None,
    causationids: Iterable[str] = (),
    traceparent: str | None = None,
    tracestate: str | None = None,
    time: datetime | None = None,
    event_id: UUID | None = None,
) -> EventDraft[DataT]:
    """Draft an event of `cls`, filling id, times, type, schema and (by default) subject.

    The subject defaults to the payload's aggregate id; `time` defaults to now (UTC).
    """
    recorded = datetime.now(UTC)
    defaults = cls.model_fields
    if subject is None and cls.subject_field is not None:
        aggregate_id = getattr(data, cls.subject_field, None)  # absent if data is of another type
        subject = None if aggregate_id is None else str(aggregate_id)
    return EventDraft.model_validate(
        {
            "id": event_id or uuid4(),
            "type": defaults["type"].default,
            "dataschema": defaults["dataschema"].default,
            "schemaversion": defaults["schemaversion"].default,
            "source": source,
            "subject": subject,
            "time": time or recorded,
            "recordedtime": recorded,
            "subjectversion": subjectversion,
            "causationids": tuple(causationids),
            "correlationid": correlationid,
            "traceparent": traceparent,
            "tracestate": tracestate,
            "actorid": actorid,
            "actorrole": actorrole,
            "data": data,
        }
    )
