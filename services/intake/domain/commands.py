"""Commands listeners send to intake. Validation names the field; values are never echoed."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts import Consent, EquityProfile, RecontactConsent
from contracts.fields import PLAIN_TEXT_PATTERN as TEXT

PSEUDONYM = r"^[A-Za-z0-9_.:-]{1,64}$"
PARTICIPANT_ID = r"^p_[A-Za-z0-9]{8,40}$"
#: No white space or control characters anywhere in an address (they would reach mail headers).
_ADDRESS_PART = r"[^@\s\x00-\x1f\x7f-\x9f]"
EMAIL = rf"^{_ADDRESS_PART}{{1,64}}@{_ADDRESS_PART}+\.{_ADDRESS_PART}+$"
#: Free text: any characters but control characters (see contracts.fields).
Text = Annotated[str, Field(pattern=TEXT)]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ContactDetails(_Command):
    """Kept only in the vault, sealed with the participant's key; never in an event."""

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=TEXT,
                             description="How the person likes to be addressed.",
                             examples=["Amina"])
    email: str | None = Field(default=None, max_length=254,
                              pattern=EMAIL,
                              description="Email for feedback.", examples=["amina@example.org"])
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{6,32}$",
                              description="Phone number.", examples=["+44 7700 900123"])


class ParticipantRef(_Command):
    id: str | None = Field(
        default=None, pattern=PARTICIPANT_ID,
        description="Pseudonymous id of a returning participant; omit for someone new.",
        examples=["p_8f3k2m9q1z"],
    )
    contact: ContactDetails | None = Field(
        default=None, description="Contact details, if they want to hear back.")


class LogConversation(_Command):
    listener_id: str = Field(pattern=PSEUDONYM, description="Pseudonymous listener id.",
                             examples=["listener-17"])
    held_on: date = Field(description="The day the conversation took place.",
                          examples=["2026-11-20"])
    setting: str = Field(min_length=1, max_length=120, pattern=TEXT,
                         description="Where, in plain words.",
                         examples=["community café"])
    place: str = Field(min_length=1, max_length=120, pattern=TEXT,
                       description="Area, by its common name.",
                       examples=["Tower Hamlets"])
    categories: tuple[str, ...] = Field(min_length=1, max_length=10,
                                        description="Enquiry category codes.",
                                        examples=[["community_support"]])
    summary: str = Field(min_length=1, max_length=4000, pattern=TEXT,
                         description="What the person said, in plain words, without names or "
                         "contact details.", examples=["Waited months for a first appointment."])
    quotes: tuple[Text, ...] = Field(default=(), max_length=20,
                                     description="Their own words (only with consent to quote).",
                                     examples=[["Nobody called me back."]])
    support_shared: tuple[Text, ...] = Field(
        default=(), max_length=30, description="Support the listener told them about.",
        examples=[["talking therapies", "peer support group"]])
    participant: ParticipantRef = Field(default_factory=ParticipantRef)
    consent: Consent
    equity: EquityProfile | None = None

    @field_validator("quotes")
    @classmethod
    def _quote_lengths(cls, quotes: tuple[str, ...]) -> tuple[str, ...]:
        for quote in quotes:
            if not 1 <= len(quote) <= 2000:
                raise ValueError("each quote must be 1 to 2000 characters")
        return quotes

    @field_validator("support_shared")
    @classmethod
    def _support_lengths(cls, items: tuple[str, ...]) -> tuple[str, ...]:
        for item in items:
            if not 1 <= len(item) <= 120:
                raise ValueError("each support name must be 1 to 120 characters")
        return items


class ChangeConsent(_Command):
    actor_id: str = Field(pattern=PSEUDONYM, description="Who records the change.",
                          examples=["listener-17"])
    consent: RecontactConsent


class EraseParticipant(_Command):
    actor_id: str = Field(pattern=PSEUDONYM, description="Who records the erasure.",
                          examples=["listener-17"])
