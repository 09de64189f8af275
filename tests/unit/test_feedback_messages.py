"""The words people receive: what changed, which of their points, thanks; no jargon."""

from __future__ import annotations

from uuid import uuid4

from services.feedback.domain.categories import CategoryNames, load_category_names
from services.feedback.domain.chain import ActionNode
from services.feedback.domain.glossary import shipped_glossary
from services.feedback.domain.messages import Wording

WORDING = Wording(shipped_glossary(), load_category_names(None))


def action(status: str = "in_progress") -> ActionNode:
    return ActionNode(
        action_id=uuid4(), priority_ids=(uuid4(),), status=status,  # type: ignore[arg-type]
        description="The CMHT will run a weekly IAPT drop-in at the community café",
        service="CMHT", place="Tower Hamlets", framework="CMHF",
        framework_area="Access and engagement", event_id=uuid4(),
    )


def test_the_email_says_what_changed_where_which_points_and_thanks_in_plain_words() -> None:
    body = WORDING.email_body(action(), ("continuity_of_care", "cultural_factors"), "Amina")
    assert body.startswith("Hello Amina,\n")
    assert "the community mental health team in Tower Hamlets is making a change" in body
    assert "weekly NHS Talking Therapies drop-in at the community café." in body
    assert "part of the Community Mental Health Framework (access and engagement)" in body
    assert body.index("Cultural factors around mental health") < body.index("Continuity of care")
    assert "This change is now under way." in body
    assert "Thank you. What you told us helped make this happen." in body
    for jargon in ("CMHT", "IAPT", "CMHF", "continuity_of_care"):
        assert jargon not in body


def test_the_email_greets_without_a_name_and_says_how_far_the_change_has_got() -> None:
    body = WORDING.email_body(action("done"), ("community_support",), None)
    assert body.startswith("Hello,\n")
    assert "This change has now been made." in body


def test_the_peer_brief_speaks_of_them_and_carries_nothing_that_identifies_them() -> None:
    brief = WORDING.peer_brief(action(), ("community_support",))
    assert "Because of what they and others said" in brief
    assert "Value of community support" in brief
    assert "Hello" not in brief and "CMHT" not in brief


def test_unknown_category_codes_are_spoken_as_words() -> None:
    names = CategoryNames({"housing": "Somewhere safe to live"})
    assert names.name("housing") == "Somewhere safe to live"
    assert names.name("peer_support_groups") == "Peer support groups"
    assert names.ordered(["zeta", "housing", "alpha"]) == ["housing", "alpha", "zeta"]
