"""How a co-production session agrees a priority: the tally, the rule's bounds, and why not.

Whether a tally agrees a priority is `AgreementRule.is_met`, the contract's own rule; this module
only counts responses and explains a failure in words partners understand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Final, Literal

from contracts import AgreementRule, Tally
from services.priority.domain.rules import RuleBroken

Response = Literal["support", "object", "abstain"]

#: Most partners one session can count: PriorityAgreed lists at most 500 supporters.
MAX_PARTNERS: Final = 500
#: Largest majority denominator a session may choose (shares such as 2/3, 3/5, 7/10).
MAX_DENOMINATOR: Final = 100


def tally_of(responses: Iterable[Response]) -> Tally:
    counts = Counter(responses)
    return Tally(support=counts["support"], object=counts["object"], abstain=counts["abstain"])


def why_not_agreed(rule: AgreementRule, tally: Tally) -> list[str]:
    """Why the tally does not meet the rule, one reason per failed part; [] when it is met.

    Each part is asked of `rule.is_met` itself: the quorum alone (everyone present supporting),
    then the majority alone (a quorum of one), so the explanation cannot drift from the rule.
    """
    if rule.is_met(tally):
        return []
    reasons: list[str] = []
    if not rule.is_met(Tally(support=tally.present, object=0, abstain=0)):
        reasons.append(f"quorum not reached: {tally.present} of {rule.quorum} partners responded")
    if not rule.model_copy(update={"quorum": 1}).is_met(tally):
        reasons.append(_majority_reason(rule, tally))
    return reasons or ["the tally does not meet the agreement rule"]


def _majority_reason(rule: AgreementRule, tally: Tally) -> str:
    share = f"{rule.majority_numerator}/{rule.majority_denominator}"
    decided = tally.support + tally.object
    if decided == 0:
        return f"no partner supported or objected, so there is no majority (required {share})"
    return f"support {tally.support} of {decided} is below the required {share}"


def check_rule_bounds(rule: AgreementRule, min_quorum: int) -> list[RuleBroken]:
    """A session's rule must keep a priority collective and supported by at least half."""
    broken: list[RuleBroken] = []
    if rule.quorum < min_quorum:
        broken.append(RuleBroken(
            "rule.quorum", f"must be at least {min_quorum}: a collective priority needs partners"))
    if rule.quorum > MAX_PARTNERS:
        broken.append(RuleBroken("rule.quorum", f"must be at most {MAX_PARTNERS}"))
    if rule.majority_denominator > MAX_DENOMINATOR:
        broken.append(RuleBroken("rule.majority_denominator", f"must be at most {MAX_DENOMINATOR}"))
    if rule.majority_numerator * 2 < rule.majority_denominator:
        broken.append(RuleBroken(
            "rule.majority_numerator", "the share of support required must be at least 1/2"))
    return broken
