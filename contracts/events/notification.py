"""ParticipantNotified: a participant was told what changed (source: feedback)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.envelope import Envelope
from contracts.events._declare import data_field, dataschema_field, schemaversion_field, type_field
from contracts.fields import (
    CONTRACT_CONFIG,
    UNIQUE_ITEMS,
    CategoryCode,
    ParticipantId,
    Unique,
    example_of,
)

UniqueIds = Annotated[tuple[UUID, ...], Unique]


class Chain(BaseModel):
    """The golden thread from their conversations to the action."""

    model_config = CONTRACT_CONFIG

    priority_ids: UniqueIds = Field(
        min_length=1,
        max_length=100,
        json_schema_extra=UNIQUE_ITEMS,
        description="Priorities the action answered.",
        examples=[["2d4c6e8a-1b3d-4f5a-8c7e-9a0b1c2d3e4f"]],
    )
    insight_ids: UniqueIds = Field(
        min_length=1,
        max_length=500,
        json_schema_extra=UNIQUE_ITEMS,
        description="Insights behind those priorities.",
        examples=[["9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"]],
    )
    conversation_ids: UniqueIds = Field(
        min_length=1,
        max_length=500,
        json_schema_extra=UNIQUE_ITEMS,
        description="Their conversations those insights cited.",
        examples=[["5f0c8a3e-7b1d-4e0a-9c3b-6d2e8f4a1b7c"]],
    )


class ParticipantNotified(BaseModel):
    """Who was told, about which action, how, and which of their points it answered."""

    model_config = CONTRACT_CONFIG

    notification_id: UUID = Field(
        description="Notification id (the subject).",
        examples=["8c7b6a59-4838-4271-a60f-5e4d3c2b1a09"],
    )
    participant_id: ParticipantId = Field(
        description="Pseudonymous participant id.", examples=["p_9f3Kx2Lm8Q"]
    )
    action_id: UUID = Field(
        description="The action they were told about.",
        examples=["4b3a2918-0f7e-4d6c-9b5a-483726150f4e"],
    )
    channel: Literal["email", "peer_in_person"] = Field(
        description="How they were told.", examples=["peer_in_person"]
    )
    chain: Chain = Field(
        description="From their conversations to the action.", examples=[example_of(Chain)]
    )
    points_answered: Annotated[tuple[CategoryCode, ...], Unique] = Field(
        (),
        max_length=64,
        json_schema_extra=UNIQUE_ITEMS,
        description="Category codes of their points the action answered.",
        examples=[["cultural_factors"]],
    )


class ParticipantNotifiedEvent(Envelope[ParticipantNotified]):
    """A participant was told what changed because of what they said (source: feedback)."""

    subject_field: ClassVar[str | None] = "notification_id"

    type: Literal["ParticipantNotified"] = type_field("ParticipantNotified")
    dataschema: str = dataschema_field("ParticipantNotified", 1)
    schemaversion: Literal[1] = schemaversion_field(1)
    data: ParticipantNotified = data_field(ParticipantNotified, "The notification.")
