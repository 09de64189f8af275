"""Commands partners and service leads send. Validation names the field; values are never echoed."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts import AgreementRule
from contracts.fields import PLAIN_TEXT_PATTERN, PseudonymousId, Unique
from services.priority.domain.agreement import Response

ActionStatus = Literal["planned", "in_progress", "done"]
UniqueIds = Annotated[tuple[UUID, ...], Unique]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _name(description: str, example: str) -> Any:
    return Field(min_length=1, max_length=120, pattern=PLAIN_TEXT_PATTERN,
                 description=description, examples=[example])


class OpenSession(_Command):
    opened_by: PseudonymousId = Field(description="Pseudonymous id of the partner or facilitator "
                                      "opening the session.", examples=["partner_a1"])
    insight_ids: UniqueIds = Field(min_length=1, max_length=500,
                                   description="Insights under discussion (each once).",
                                   examples=[["9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"]])
    statement: str = Field(min_length=1, max_length=2000, pattern=PLAIN_TEXT_PATTERN,
                           description="The proposed priority, in plain language.",
                           examples=["Offer support through trusted community groups."])
    rule: AgreementRule | None = Field(
        default=None, description="Quorum and majority to decide by; omit for the default "
        "(quorum 3 partners, at least 2/3 of those who support or object).")


class RecordResponse(_Command):
    partner_id: PseudonymousId = Field(description="Pseudonymous id of the partner responding.",
                                       examples=["partner_b2"])
    response: Response = Field(description="Their response; a later one replaces an earlier one "
                               "while the session is open.", examples=["support"])


class DecideSession(_Command):
    decided_by: PseudonymousId = Field(description="Pseudonymous id of whoever closes the session.",
                                       examples=["partner_a1"])


class RecordAction(_Command):
    recorded_by: PseudonymousId = Field(description="Pseudonymous id of the service lead.",
                                        examples=["lead_3Rt9"])
    priority_ids: UniqueIds = Field(min_length=1, max_length=100,
                                    description="Agreed priorities the action answers (each once).",
                                    examples=[["2d4c6e8a-1b3d-4f5a-8c7e-9a0b1c2d3e4f"]])
    description: str = Field(min_length=1, max_length=2000, pattern=PLAIN_TEXT_PATTERN,
                             description="What is changing, in plain language.",
                             examples=["Weekly drop-in with a mental health worker at the café."])
    service: str = _name("The service, by its common name.", "community mental health team")
    place: str = _name("The place, by its common name.", "Tower Hamlets")
    framework: str = _name("Change framework the action belongs to.",
                           "Community Mental Health Framework")
    framework_area: str = _name("Area of that framework.", "Access and engagement")
    status: ActionStatus = Field(description="How far the action has got.", examples=["planned"])


class UpdateActionStatus(_Command):
    recorded_by: PseudonymousId = Field(description="Pseudonymous id of the service lead.",
                                        examples=["lead_3Rt9"])
    status: ActionStatus = Field(description="How far the action has got now.",
                                 examples=["in_progress"])
