"""The rules for citing conversations in an insight: each says why it is broken."""

from __future__ import annotations

from uuid import UUID, uuid4

from services.insight.domain.rules import (
    MAX_CITED,
    Evidence,
    RuleBroken,
    category_is_touched_by_the_evidence,
    check_citation,
    cites_at_least_one_conversation,
    cites_each_conversation_once,
    cites_no_erased_conversation,
    cites_only_known_conversations,
    statement_is_1_to_2000_characters,
)


def evidence(*categories: str, erased: bool = False) -> Evidence:
    return Evidence(conversation_id=uuid4(), event_id=uuid4(),
                    categories=categories or ("community_support",), erased=erased)


def by_id(*items: Evidence) -> dict[UUID, Evidence]:
    return {e.conversation_id: e for e in items}


def fields(broken: list[RuleBroken]) -> list[str]:
    return [b.field for b in broken]


def test_a_statement_of_1_to_2000_characters_is_accepted() -> None:
    assert statement_is_1_to_2000_characters("x") == []
    assert statement_is_1_to_2000_characters("x" * 2000) == []


def test_an_empty_or_overlong_statement_is_refused_without_echoing_it() -> None:
    for statement in ("", "y" * 2001):
        [broken] = statement_is_1_to_2000_characters(statement)
        assert broken.field == "statement" and "2000" in broken.problem
        assert "y" * 20 not in broken.problem


def test_an_insight_must_cite_at_least_one_and_at_most_500_conversations() -> None:
    assert fields(cites_at_least_one_conversation([])) == ["conversation_ids"]
    assert cites_at_least_one_conversation([uuid4()]) == []
    assert fields(cites_at_least_one_conversation([uuid4()] * (MAX_CITED + 1))) == ["conversation_ids"]


def test_a_conversation_cited_twice_is_named_by_its_position() -> None:
    a, b = uuid4(), uuid4()
    broken = cites_each_conversation_once([a, b, a])
    assert fields(broken) == ["conversation_ids[2]"]
    assert str(a) not in broken[0].problem


def test_unknown_conversations_are_named_by_position() -> None:
    known = evidence()
    broken = cites_only_known_conversations([known.conversation_id, uuid4()], by_id(known))
    assert fields(broken) == ["conversation_ids[1]"] and "unknown" in broken[0].problem


def test_erased_conversations_cannot_be_cited() -> None:
    kept, gone = evidence(), evidence(erased=True)
    broken = cites_no_erased_conversation([kept.conversation_id, gone.conversation_id],
                                          by_id(kept, gone))
    assert fields(broken) == ["conversation_ids[1]"] and "forgotten" in broken[0].problem


def test_the_category_must_be_touched_by_a_cited_conversation() -> None:
    a, b = evidence("cultural_factors"), evidence("continuity_of_care", "community_support")
    ids = [a.conversation_id, b.conversation_id]
    assert category_is_touched_by_the_evidence("community_support", ids, by_id(a, b)) == []
    assert fields(category_is_touched_by_the_evidence("clinical_and_social_help", ids,
                                                      by_id(a, b))) == ["category"]


def test_an_erased_conversation_does_not_lend_its_category() -> None:
    kept, gone = evidence("cultural_factors"), evidence("community_support", erased=True)
    ids = [kept.conversation_id, gone.conversation_id]
    assert fields(category_is_touched_by_the_evidence("community_support", ids,
                                                      by_id(kept, gone))) == ["category"]


def test_a_sound_citation_breaks_no_rule() -> None:
    a = evidence("community_support")
    assert check_citation("Groups help.", "community_support", [a.conversation_id], by_id(a)) == []


def test_every_broken_rule_is_reported_together() -> None:
    a, gone = evidence("community_support"), evidence(erased=True)
    ids = [a.conversation_id, a.conversation_id, gone.conversation_id, uuid4()]
    broken = check_citation("", "cultural_factors", ids, by_id(a, gone))
    assert fields(broken) == ["statement", "conversation_ids[1]", "conversation_ids[3]",
                              "conversation_ids[2]", "category"]


def test_no_citation_at_all_reports_only_the_count_and_the_statement() -> None:
    assert fields(check_citation("", "cultural_factors", [], {})) == ["statement",
                                                                       "conversation_ids"]
