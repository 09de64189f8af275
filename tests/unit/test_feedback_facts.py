"""The facts feedback keeps of an upstream event: exactly the fields the graph needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contracts.registry import parse_event
from services.feedback.facts import fact_of
from services.feedback.projections import UPSTREAM_TYPES

EXAMPLES = Path(__file__).parents[2] / "contracts" / "examples"
_KEPT = {
    "ConversationLogged": {"conversation_id", "participant_id", "categories", "place", "held_on",
                           "consent"},
    "ConsentChanged": {"participant_id", "consent"},
    "ParticipantErased": {"participant_id"},
    "InsightDrafted": {"insight_id", "revision", "statement", "category", "conversation_ids"},
    "PriorityAgreed": {"priority_id", "statement", "insight_ids"},
    "ActionTaken": {"action_id", "priority_ids", "description", "service", "place", "framework",
                    "framework_area", "status"},
}


@pytest.mark.parametrize("kind", UPSTREAM_TYPES)
def test_a_fact_keeps_its_fields_as_json_and_of_consent_only_what_recontact_needs(
    kind: str
) -> None:
    event = parse_event((EXAMPLES / f"{kind}.json").read_bytes())
    whole: dict[str, Any] = event.data.model_dump(mode="json")
    expected = {k: whole[k] for k in _KEPT[kind] if k != "consent"}
    if "consent" in _KEPT[kind]:
        expected["consent"] = {k: whole["consent"][k]
                               for k in ("to_recontact", "channel", "earliest_contact_on")}
    fact = fact_of(event)
    assert dict(fact.data) == expected
    assert "summary" not in fact.data and "quotes" not in fact.data  # their words stay upstream
    assert (fact.event_id, fact.event_type, fact.sequence) == (event.id, kind, event.sequence)
