"""Commands partners send to insight. Validation names the field; values are never echoed.

The models check only shape (types, id formats); the business rules on statement length and on
the cited conversations live in `rules.py`, as named checks, so there is one home for each rule.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.fields import CATEGORY_CODE_PATTERN, PLAIN_TEXT_PATTERN, PSEUDONYMOUS_ID_PATTERN


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class DraftInsight(_Command):
    partner_id: str = Field(pattern=PSEUDONYMOUS_ID_PATTERN,
                            description="Pseudonymous id of the lived-experience partner.",
                            examples=["partner_a1"])
    statement: str = Field(pattern=PLAIN_TEXT_PATTERN,
                           description="The insight in plain language, 1 to 2000 characters.",
                           examples=["Community groups feel easier to approach than GP surgeries."])
    category: str = Field(pattern=CATEGORY_CODE_PATTERN,
                          description="Enquiry category code; at least one cited conversation "
                          "must touch it.", examples=["community_support"])
    conversation_ids: tuple[UUID, ...] = Field(
        description="Conversations the insight rests on (1 to 500, each once, none erased).",
        examples=[["5f0c8a3e-7b1d-4e0a-9c3b-6d2e8f4a1b7c"]])


class ReviseInsight(DraftInsight):
    """A full new version of the insight; the earlier revisions are kept."""

    based_on_revision: int | None = Field(
        default=None, ge=1,
        description="The revision this edit started from; if another partner revised the "
        "insight since, the edit is refused (409) rather than silently overwriting theirs.",
        examples=[1])
