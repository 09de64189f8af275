"""InsightDrafted: partners drafted a plain-language insight from conversations (source: insight)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.envelope import Envelope
from contracts.events._declare import data_field, dataschema_field, schemaversion_field, type_field
from contracts.fields import CONTRACT_CONFIG, UNIQUE_ITEMS, CategoryCode, PlainStatement, Unique


class InsightDrafted(BaseModel):
    """A revision of an insight and the conversations it rests on."""

    model_config = CONTRACT_CONFIG

    insight_id: UUID = Field(
        description="Insight id (the subject).", examples=["9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"]
    )
    revision: int = Field(ge=1, description="Revision of the insight, from 1.", examples=[1])
    statement: PlainStatement = Field(
        description="The insight in plain language.",
        examples=["Community groups feel easier to approach than GP surgeries."],
    )
    category: CategoryCode = Field(
        description="Enquiry category the insight belongs to.", examples=["cultural_factors"]
    )
    conversation_ids: Annotated[tuple[UUID, ...], Unique] = Field(
        min_length=1,
        max_length=500,
        json_schema_extra=UNIQUE_ITEMS,
        description="Conversations cited as evidence.",
        examples=[["5f0c8a3e-7b1d-4e0a-9c3b-6d2e8f4a1b7c"]],
    )


class InsightDraftedEvent(Envelope[InsightDrafted]):
    """Lived-experience partners drafted (or revised) an insight (source: insight)."""

    subject_field: ClassVar[str | None] = "insight_id"

    type: Literal["InsightDrafted"] = type_field("InsightDrafted")
    dataschema: str = dataschema_field("InsightDrafted", 1)
    schemaversion: Literal[1] = schemaversion_field(1)
    data: InsightDrafted = data_field(InsightDrafted, "The drafted insight.")
