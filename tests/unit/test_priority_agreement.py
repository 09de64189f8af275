"""The agreement rule as a session applies it: counting, explaining, and the rule's bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts import AgreementRule, Tally
from services.priority.config import PrioritySettings
from services.priority.domain.agreement import check_rule_bounds, tally_of, why_not_agreed

TWO_THIRDS_OF_THREE = AgreementRule(quorum=3, majority_numerator=2, majority_denominator=3)


def tally(support: int, object: int = 0, abstain: int = 0) -> Tally:
    return Tally(support=support, object=object, abstain=abstain)


def test_responses_are_counted_by_kind() -> None:
    assert tally_of(["support", "object", "support", "abstain"]) == tally(2, 1, 1)
    assert tally_of([]) == tally(0)


@pytest.mark.parametrize(
    ("counts", "agreed"),
    [
        ((2, 1, 0), True),   # exactly 2/3 of those deciding
        ((3, 0, 0), True),
        ((2, 0, 1), True),   # an abstention counts for quorum, not for the majority
        ((1, 1, 1), False),  # 1/2 < 2/3
        ((2, 2, 0), False),
        ((2, 0, 0), False),  # quorum not reached
        ((0, 0, 3), False),  # quorum reached, but nobody decided
    ],
)
def test_the_contract_rule_decides(counts: tuple[int, int, int], agreed: bool) -> None:
    t = tally(*counts)
    assert TWO_THIRDS_OF_THREE.is_met(t) is agreed
    assert (why_not_agreed(TWO_THIRDS_OF_THREE, t) == []) is agreed


def test_a_missing_quorum_says_how_many_responded() -> None:
    assert why_not_agreed(TWO_THIRDS_OF_THREE, tally(2)) == [
        "quorum not reached: 2 of 3 partners responded"
    ]


def test_a_weak_majority_says_how_much_support_there_was() -> None:
    assert why_not_agreed(TWO_THIRDS_OF_THREE, tally(1, 2)) == [
        "support 1 of 3 is below the required 2/3"
    ]


def test_both_failures_are_named_together() -> None:
    assert why_not_agreed(TWO_THIRDS_OF_THREE, tally(0, 1)) == [
        "quorum not reached: 1 of 3 partners responded",
        "support 0 of 1 is below the required 2/3",
    ]


def test_only_abstentions_make_no_majority() -> None:
    [reason] = why_not_agreed(TWO_THIRDS_OF_THREE, tally(0, 0, 3))
    assert reason.startswith("no partner supported or objected")


def test_nobody_responding_fails_both_parts() -> None:
    assert len(why_not_agreed(TWO_THIRDS_OF_THREE, tally(0))) == 2


def test_a_simple_majority_rule_accepts_a_tie() -> None:
    half = AgreementRule(quorum=4, majority_numerator=1, majority_denominator=2)
    assert half.is_met(tally(2, 2)) and why_not_agreed(half, tally(2, 2)) == []
    assert why_not_agreed(half, tally(1, 2, 1)) == ["support 1 of 3 is below the required 1/2"]


def test_sane_rules_pass_the_bounds() -> None:
    assert check_rule_bounds(TWO_THIRDS_OF_THREE, min_quorum=2) == []
    assert check_rule_bounds(AgreementRule(quorum=500, majority_numerator=1,
                                           majority_denominator=1), min_quorum=2) == []


@pytest.mark.parametrize(
    ("quorum", "numerator", "denominator", "field"),
    [
        (1, 2, 3, "rule.quorum"),
        (501, 2, 3, "rule.quorum"),
        (3, 1, 3, "rule.majority_numerator"),
        (3, 49, 100, "rule.majority_numerator"),
        (3, 101, 101, "rule.majority_denominator"),
    ],
)
def test_rules_outside_the_bounds_name_the_field(
    quorum: int, numerator: int, denominator: int, field: str
) -> None:
    rule = AgreementRule(quorum=quorum, majority_numerator=numerator,
                         majority_denominator=denominator)
    assert [b.field for b in check_rule_bounds(rule, min_quorum=2)] == [field]


def test_the_default_rule_is_quorum_three_and_two_thirds() -> None:
    assert PrioritySettings().default_rule() == TWO_THIRDS_OF_THREE


def test_an_insane_default_rule_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="share of support"):
        PrioritySettings(priority_default_majority_numerator=1,
                         priority_default_majority_denominator=4)
