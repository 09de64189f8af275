"""ConversationLogged: a community listener logged a two-way conversation (source: intake)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Final, Literal, Self
from uuid import UUID

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from contracts.envelope import Envelope
from contracts.events._declare import data_field, dataschema_field, schemaversion_field, type_field
from contracts.events.consent import Consent
from contracts.fields import (
    BASE64URL_PATTERN,
    CONTRACT_CONFIG,
    PLAIN_TEXT_PATTERN,
    UNIQUE_ITEMS,
    CategoryCode,
    ParticipantId,
    PlainName,
    PseudonymousId,
    SelfDescription,
    Unique,
    example_of,
    keeps_types,
)

#: Longest accepted ciphertext, in base64url characters (64 KiB).
MAX_SEALED_CHARS: Final = 64 * 1024


class Sealed(BaseModel):
    """Words encrypted with the participant's own key: unreadable once that key is destroyed."""

    model_config = CONTRACT_CONFIG

    key_id: str = Field(
        min_length=1,
        max_length=64,
        description="Id of the participant's key in the intake vault.",
        examples=["k_p_9f3Kx2Lm8Q_1"],
    )
    alg: Literal["AES-256-GCM"] = Field(
        description="Encryption algorithm.", examples=["AES-256-GCM"]
    )
    nonce: str = Field(
        pattern=r"^[A-Za-z0-9_-]{16}$",
        description="The 96-bit GCM nonce, base64url without padding.",
        examples=["bXlub25jZTEyMzQ1"],
    )
    ciphertext: str = Field(
        max_length=MAX_SEALED_CHARS,
        pattern=BASE64URL_PATTERN,
        description="Ciphertext with its GCM tag, base64url.",
        examples=["8fLq0cJ1Zx3m0rW4b1dQm9mCk2s7Yw"],
    )


class EquityProfile(BaseModel):
    """How the participant chose to describe themselves; every answer is optional."""

    model_config = CONTRACT_CONFIG

    age_band: SelfDescription | None = Field(None, description="Age band.", examples=["25-34"])
    ethnicity: SelfDescription | None = Field(
        None, description="Ethnicity, self-described.", examples=["Bangladeshi"]
    )
    gender: SelfDescription | None = Field(
        None, description="Gender, self-described.", examples=["woman"]
    )
    disability: SelfDescription | None = Field(
        None, description="Disability, self-described.", examples=["prefer not to say"]
    )
    language: SelfDescription | None = Field(
        None, description="Preferred language.", examples=["Sylheti"]
    )
    area: SelfDescription | None = Field(
        None, description="Area they live in, as they name it.", examples=["Whitechapel"]
    )


class ConversationLogged(BaseModel):
    """What a person said, what support they were told about, and what they consented to."""

    model_config = CONTRACT_CONFIG

    conversation_id: UUID = Field(
        description="Conversation id (the subject).",
        examples=["5f0c8a3e-7b1d-4e0a-9c3b-6d2e8f4a1b7c"],
    )
    participant_id: ParticipantId = Field(
        description="Pseudonymous participant id.", examples=["p_9f3Kx2Lm8Q"]
    )
    participant_status: Literal["new", "returning"] = Field(
        description="Whether the listener has spoken with them before.", examples=["new"]
    )
    listener_id: PseudonymousId = Field(
        description="Pseudonymous id of the community listener or peer worker.",
        examples=["listener_7Hq2"],
    )
    held_on: date = Field(description="Date of the conversation.", examples=["2025-03-14"])
    setting: PlainName = Field(
        description="Plain name of where it happened.", examples=["community café"]
    )
    place: PlainName = Field(description="Plain place name.", examples=["Tower Hamlets"])
    categories: Annotated[tuple[CategoryCode, ...], Unique] = Field(
        min_length=1,
        json_schema_extra=UNIQUE_ITEMS,
        description="Enquiry category codes the conversation touched.",
        examples=[["cultural_factors", "community_support"]],
    )
    categories_version: int = Field(
        ge=1, description="Version of the enquiry category list used.", examples=[1]
    )
    summary: str = Field(
        min_length=1,
        max_length=4000,
        pattern=PLAIN_TEXT_PATTERN,
        description="Plain-language summary written by the listener; never identifying.",
        examples=["Finds it hard to talk about low mood at home; the café group helps."],
    )
    quotes: tuple[Sealed, ...] = Field(
        (),
        max_length=20,
        description="The person's own words, each sealed with their key; empty unless "
        "they consented to quoting.",
        examples=[[example_of(Sealed)]],
    )
    support_shared: tuple[PlainName, ...] = Field(
        (),
        max_length=30,
        description="Services the listener told them about, by their common names.",
        examples=[["talking therapies", "carers' centre"]],
    )
    consent: Consent = Field(description="What they agreed to.", examples=[example_of(Consent)])
    equity: EquityProfile | None = Field(
        None,
        description="Self-described equity profile, if they chose to give one.",
        examples=[example_of(EquityProfile)],
    )

    @model_validator(mode="after")
    @keeps_types
    def _quotes_need_consent(self) -> Self:
        if self.quotes and not self.consent.to_quote:
            raise PydanticCustomError(
                "quote_consent", "quotes must be empty: consent.to_quote is false"
            )
        return self


class ConversationLoggedEvent(Envelope[ConversationLogged]):
    """A community listener or peer worker logged a conversation (source: intake)."""

    subject_field: ClassVar[str | None] = "conversation_id"

    type: Literal["ConversationLogged"] = type_field("ConversationLogged")
    dataschema: str = dataschema_field("ConversationLogged", 1)
    schemaversion: Literal[1] = schemaversion_field(1)
    data: ConversationLogged = data_field(ConversationLogged, "The logged conversation.")
