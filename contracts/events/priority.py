"""PriorityAgreed: partners agreed a collective priority by an explicit rule (source: priority)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self
from uuid import UUID

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from contracts.envelope import Envelope
from contracts.events._declare import data_field, dataschema_field, schemaversion_field, type_field
from contracts.fields import (
    CONTRACT_CONFIG,
    UNIQUE_ITEMS,
    PlainStatement,
    PseudonymousId,
    Unique,
    example_of,
    keeps_types,
)


class Tally(BaseModel):
    """How the partners present responded."""

    model_config = CONTRACT_CONFIG

    support: int = Field(ge=0, description="Partners who supported.", examples=[5])
    object: int = Field(ge=0, description="Partners who objected.", examples=[1])
    abstain: int = Field(ge=0, description="Partners who abstained.", examples=[1])

    @property
    def present(self) -> int:
        return self.support + self.object + self.abstain


class AgreementRule(BaseModel):
    """Quorum and majority a session agreed to decide by.

    The quorum counts everyone who responded, abstentions included; the majority is the share
    of support among those who supported or objected, and must be at least
    majority_numerator / majority_denominator (e.g. 2/3).
    """

    model_config = CONTRACT_CONFIG

    quorum: int = Field(ge=1, description="Fewest partners who must respond.", examples=[5])
    majority_numerator: int = Field(ge=1, description="Majority numerator.", examples=[2])
    majority_denominator: int = Field(ge=1, description="Majority denominator.", examples=[3])

    @model_validator(mode="after")
    @keeps_types
    def _majority_is_a_fraction(self) -> Self:
        if self.majority_numerator > self.majority_denominator:
            raise PydanticCustomError(
                "majority_fraction",
                "majority_numerator must not exceed majority_denominator (a share of at most 1)",
            )
        return self

    def is_met(self, tally: Tally) -> bool:
        """Whether the tally agrees a priority under this rule."""
        decided = tally.support + tally.object
        return (
            tally.present >= self.quorum
            and decided > 0
            and tally.support * self.majority_denominator >= self.majority_numerator * decided
        )


class PriorityAgreed(BaseModel):
    """A collective priority, the insights behind it, and how it was agreed."""

    model_config = CONTRACT_CONFIG

    priority_id: UUID = Field(
        description="Priority id (the subject).", examples=["2d4c6e8a-1b3d-4f5a-8c7e-9a0b1c2d3e4f"]
    )
    session_id: UUID = Field(
        description="Co-production session where it was agreed.",
        examples=["6e5d4c3b-2a19-4f8e-8d7c-6b5a49382716"],
    )
    statement: PlainStatement = Field(
        description="The priority in plain language.",
        examples=["Offer mental health support through trusted community groups."],
    )
    insight_ids: Annotated[tuple[UUID, ...], Unique] = Field(
        min_length=1,
        max_length=500,
        json_schema_extra=UNIQUE_ITEMS,
        description="Insights the priority was agreed from.",
        examples=[["9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"]],
    )
    agreed_by: Annotated[tuple[PseudonymousId, ...], Unique] = Field(
        max_length=500,
        json_schema_extra=UNIQUE_ITEMS,
        description="Pseudonymous ids of the partners who supported it (one per support).",
        examples=[["partner_a1", "partner_b2", "partner_c3", "partner_d4", "partner_e5"]],
    )
    tally: Tally = Field(description="How partners responded.", examples=[example_of(Tally)])
    rule: AgreementRule = Field(
        description="The rule it was agreed by.", examples=[example_of(AgreementRule)]
    )

    @model_validator(mode="after")
    @keeps_types
    def _agreed_by_the_rule(self) -> Self:
        if len(self.agreed_by) != self.tally.support:
            raise PydanticCustomError(
                "supporters_mismatch", "agreed_by must list exactly tally.support partners"
            )
        if not self.rule.is_met(self.tally):
            raise PydanticCustomError(
                "rule_not_met", "the tally does not meet the agreement rule's quorum and majority"
            )
        return self


class PriorityAgreedEvent(Envelope[PriorityAgreed]):
    """Lived-experience partners agreed a collective priority (source: priority)."""

    subject_field: ClassVar[str | None] = "priority_id"

    type: Literal["PriorityAgreed"] = type_field("PriorityAgreed")
    dataschema: str = dataschema_field("PriorityAgreed", 1)
    schemaversion: Literal[1] = schemaversion_field(1)
    data: PriorityAgreed = data_field(PriorityAgreed, "The agreed priority.")
