"""What a participant agreed to, and the rule that keeps recontact and channel consistent."""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from contracts.fields import CONTRACT_CONFIG, keeps_types

Channel = Literal["email", "peer_in_person", "none"]


class RecontactConsent(BaseModel):
    """Whether and how a participant may be quoted and told what changed."""

    model_config = CONTRACT_CONFIG

    to_quote: bool = Field(
        description="They agreed their own words may be kept (encrypted) and quoted.",
        examples=[True],
    )
    to_recontact: bool = Field(
        description="They want to be told what changed because of what they said.",
        examples=[True],
    )
    channel: Channel = Field(
        description="How to tell them: by email, in person by a peer, or 'none' "
        "when they do not want to be recontacted. Contact details stay in the intake vault.",
        examples=["peer_in_person"],
    )
    earliest_contact_on: date | None = Field(
        None,
        description="Not to be contacted before this date (people often need time after "
        "treatment); null means any time.",
        examples=["2025-06-01"],
    )

    @model_validator(mode="after")
    @keeps_types
    def _channel_matches_recontact(self) -> Self:
        if self.to_recontact and self.channel == "none":
            raise PydanticCustomError(
                "consent_channel",
                "to_recontact is true, so a channel ('email' or 'peer_in_person') is needed "
                "to reach them",
            )
        if not self.to_recontact and self.channel != "none":
            raise PydanticCustomError(
                "consent_channel",
                "to_recontact is false, so channel must be 'none': nobody may contact them",
            )
        return self


class Consent(RecontactConsent):
    """Consent given when a conversation is logged; storing it at all requires consent."""

    to_store: Literal[True] = Field(
        description="They agreed the conversation may be stored; without it nothing is logged.",
        examples=[True],
    )
