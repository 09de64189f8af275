"""Events on the participants stream (source: intake): erasure and changed consent."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from contracts.envelope import Envelope
from contracts.events._declare import data_field, dataschema_field, schemaversion_field, type_field
from contracts.events.consent import RecontactConsent
from contracts.fields import CONTRACT_CONFIG, ParticipantId, example_of


class ParticipantErased(BaseModel):
    """A participant asked to be forgotten: their key was destroyed, so their words are gone."""

    model_config = CONTRACT_CONFIG

    participant_id: ParticipantId = Field(
        description="Pseudonymous participant id (the subject).", examples=["p_9f3Kx2Lm8Q"]
    )
    erased_on: date = Field(description="Date their key was destroyed.", examples=["2025-09-01"])


class ConsentChanged(BaseModel):
    """A participant changed whether and how they may be quoted or recontacted."""

    model_config = CONTRACT_CONFIG

    participant_id: ParticipantId = Field(
        description="Pseudonymous participant id (the subject).", examples=["p_9f3Kx2Lm8Q"]
    )
    consent: RecontactConsent = Field(
        description="Their consent from now on.", examples=[example_of(RecontactConsent)]
    )


class ParticipantErasedEvent(Envelope[ParticipantErased]):
    """A participant was erased by destroying their key (source: intake)."""

    subject_field: ClassVar[str | None] = "participant_id"

    type: Literal["ParticipantErased"] = type_field("ParticipantErased")
    dataschema: str = dataschema_field("ParticipantErased", 1)
    schemaversion: Literal[1] = schemaversion_field(1)
    data: ParticipantErased = data_field(ParticipantErased, "The erasure.")


class ConsentChangedEvent(Envelope[ConsentChanged]):
    """A participant's consent changed (source: intake)."""

    subject_field: ClassVar[str | None] = "participant_id"

    type: Literal["ConsentChanged"] = type_field("ConsentChanged")
    dataschema: str = dataschema_field("ConsentChanged", 1)
    schemaversion: Literal[1] = schemaversion_field(1)
    data: ConsentChanged = data_field(ConsentChanged, "The new consent.")
