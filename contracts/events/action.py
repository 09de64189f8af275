"""ActionTaken: a service or trust recorded an action against priorities."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.envelope import Envelope
from contracts.events._declare import data_field, dataschema_field, schemaversion_field, type_field
from contracts.fields import CONTRACT_CONFIG, UNIQUE_ITEMS, PlainName, PlainStatement, Unique


class ActionTaken(BaseModel):
    """What a service is doing about one or more priorities, and where it belongs."""

    model_config = CONTRACT_CONFIG

    action_id: UUID = Field(
        description="Action id (the subject).", examples=["4b3a2918-0f7e-4d6c-9b5a-483726150f4e"]
    )
    priority_ids: Annotated[tuple[UUID, ...], Unique] = Field(
        min_length=1,
        max_length=100,
        json_schema_extra=UNIQUE_ITEMS,
        description="Priorities the action answers.",
        examples=[["2d4c6e8a-1b3d-4f5a-8c7e-9a0b1c2d3e4f"]],
    )
    description: PlainStatement = Field(
        description="What is changing, in plain language.",
        examples=["Weekly drop-in with a mental health worker at the community café."],
    )
    service: PlainName = Field(
        description="The service, by its common name.", examples=["community mental health team"]
    )
    place: PlainName = Field(description="Plain place name.", examples=["Tower Hamlets"])
    framework: PlainName = Field(
        description="Change framework the action belongs to.",
        examples=["Community Mental Health Framework"],
    )
    framework_area: PlainName = Field(
        description="Area of that framework.", examples=["Access and engagement"]
    )
    status: Literal["planned", "in_progress", "done"] = Field(
        description="How far the action has got.", examples=["in_progress"]
    )


class ActionTakenEvent(Envelope[ActionTaken]):
    """A service or trust recorded an action (source: priority or a trust system)."""

    subject_field: ClassVar[str | None] = "action_id"

    type: Literal["ActionTaken"] = type_field("ActionTaken")
    dataschema: str = dataschema_field("ActionTaken", 1)
    schemaversion: Literal[1] = schemaversion_field(1)
    data: ActionTaken = data_field(ActionTaken, "The action.")
