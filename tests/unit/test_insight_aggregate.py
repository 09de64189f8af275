"""The insight aggregate: drafting, revising, folding its history."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts import InsightDrafted
from services.insight.domain.commands import DraftInsight, ReviseInsight
from services.insight.domain.insight import (
    Insight,
    RulesBroken,
    StaleRevision,
    causation_ids,
    decide_draft,
    decide_revision,
    evolve,
    fold,
)
from services.insight.domain.rules import Evidence


def evidence(*categories: str, erased: bool = False) -> Evidence:
    return Evidence(conversation_id=uuid4(), event_id=uuid4(),
                    categories=categories or ("community_support",), erased=erased)


def by_id(*items: Evidence) -> dict[UUID, Evidence]:
    return {e.conversation_id: e for e in items}


def draft_cmd(*cited: Evidence, **overrides: Any) -> DraftInsight:
    fields = {"partner_id": "partner_a1", "statement": "  Groups feel easier than surgeries.  ",
              "category": "community_support",
              "conversation_ids": [e.conversation_id for e in cited]} | overrides
    return DraftInsight.model_validate(fields)


def revise_cmd(*cited: Evidence, **overrides: Any) -> ReviseInsight:
    return ReviseInsight.model_validate(draft_cmd(*cited).model_dump() | overrides)


def test_a_draft_is_revision_1_of_a_new_insight_with_a_trimmed_statement() -> None:
    a = evidence()
    insight_id = uuid4()
    drafted = decide_draft(insight_id, draft_cmd(a), by_id(a))
    assert drafted == InsightDrafted(insight_id=insight_id, revision=1,
                                     statement="Groups feel easier than surgeries.",
                                     category="community_support",
                                     conversation_ids=(a.conversation_id,))


def test_a_draft_breaking_rules_is_refused_with_every_reason() -> None:
    with pytest.raises(RulesBroken) as refused:
        decide_draft(uuid4(), draft_cmd(statement="", conversation_ids=[uuid4()]), {})
    assert [p.field for p in refused.value.problems] == ["statement", "conversation_ids[0]"]


def test_causation_ids_are_the_cited_conversations_event_ids_in_citation_order() -> None:
    a, b = evidence(), evidence()
    drafted = decide_draft(uuid4(), draft_cmd(b, a), by_id(a, b))
    assert causation_ids(drafted, by_id(a, b)) == (str(b.event_id), str(a.event_id))


def test_history_folds_into_the_latest_revision() -> None:
    a, b = evidence(), evidence()
    first = decide_draft(uuid4(), draft_cmd(a), by_id(a))
    state = evolve(None, first)
    second = decide_revision(state, revise_cmd(a, b), by_id(a, b))
    assert second.revision == 2 and second.insight_id == first.insight_id
    latest = fold([first, second])
    assert latest == Insight.model_validate(second.model_dump())
    assert fold([]) is None


def test_a_history_out_of_order_does_not_fold() -> None:
    a = evidence()
    first = decide_draft(uuid4(), draft_cmd(a), by_id(a))
    with pytest.raises(ValueError):
        fold([first, first])


def test_a_revision_based_on_an_old_revision_is_stale() -> None:
    a = evidence()
    state = evolve(None, decide_draft(uuid4(), draft_cmd(a), by_id(a)))
    state = state.model_copy(update={"revision": 3})
    with pytest.raises(StaleRevision) as stale:
        decide_revision(state, revise_cmd(a, statement="New words.", based_on_revision=2), by_id(a))
    assert stale.value.latest == 3


def test_a_revision_that_changes_nothing_is_refused() -> None:
    a = evidence()
    state = evolve(None, decide_draft(uuid4(), draft_cmd(a), by_id(a)))
    with pytest.raises(RulesBroken) as refused:
        decide_revision(state, revise_cmd(a), by_id(a))
    assert [p.field for p in refused.value.problems] == ["body"]


def test_a_revision_may_not_keep_a_conversation_erased_since() -> None:
    a = evidence()
    state = evolve(None, decide_draft(uuid4(), draft_cmd(a), by_id(a)))
    gone = a.model_copy(update={"erased": True})
    with pytest.raises(RulesBroken) as refused:
        decide_revision(state, revise_cmd(a, statement="Still true."), by_id(gone))
    assert [p.field for p in refused.value.problems] == ["conversation_ids[0]"]
