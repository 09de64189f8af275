"""Business rules of intake, as small named checks that say why they are broken.

A broken rule is a `RuleBroken(field, problem)`; the message never repeats the input.
"""

from __future__ import annotations

import re
from datetime import date
from typing import NamedTuple

from services.intake.domain.categories import CategorySet
from services.intake.domain.commands import LogConversation

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.IGNORECASE)
_PHONE = re.compile(r"(?:\+?\d[\d ()-]{7,}\d)")


class RuleBroken(NamedTuple):
    field: str
    problem: str


def check_log_conversation(
    cmd: LogConversation, categories: CategorySet, today: date
) -> list[RuleBroken]:
    broken: list[RuleBroken] = []
    unknown = [c for c in cmd.categories if c not in categories.codes()]
    if unknown:
        broken.append(RuleBroken(
            "categories",
            f"unknown enquiry category; known (version {categories.version}): "
            + ", ".join(sorted(categories.codes())),
        ))
    if len(set(cmd.categories)) != len(cmd.categories):
        broken.append(RuleBroken("categories", "each category may appear once"))
    if cmd.held_on > today:
        broken.append(RuleBroken("held_on", "the conversation cannot be in the future"))
    if cmd.quotes and not cmd.consent.to_quote:
        broken.append(RuleBroken("quotes", "the participant did not consent to be quoted"))
    broken.extend(_summary_is_not_identifying(cmd))
    broken.extend(_contact_fits_consent(cmd))
    return broken


def _summary_is_not_identifying(cmd: LogConversation) -> list[RuleBroken]:
    text = cmd.summary.casefold()
    contact = cmd.participant.contact
    words = set(re.findall(r"\w+", text))
    name_parts = [p for p in (contact.name or "").casefold().split() if len(p) >= 3] if contact else []
    if _EMAIL.search(cmd.summary) or _PHONE.search(cmd.summary) or any(
        p in words for p in name_parts
    ):
        return [RuleBroken(
            "summary",
            "looks like it holds a name or contact details; keep the summary non-identifying "
            "(their own words belong in quotes, which are encrypted)",
        )]
    return []


def _contact_fits_consent(cmd: LogConversation) -> list[RuleBroken]:
    consent, contact = cmd.consent, cmd.participant.contact
    if (consent.to_recontact and consent.channel == "email" and not (contact and contact.email)
            and cmd.participant.id is None):
        return [RuleBroken("participant.contact.email",
                           "an email address is needed to send feedback by email")]
    return []
