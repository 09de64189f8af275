"""Business rules for citing conversations in an insight: small named checks that say why.

A broken rule is a `RuleBroken(field, problem)`; the message names the field (and the position
of a cited id) but never repeats the input.

Category rule (a choice): the insight's category must be one that at least one of its cited,
usable conversations touches. An insight claims something about what people said; its category
should be one they actually spoke to, not merely any code ever seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple
from uuid import UUID

from pydantic import BaseModel, ConfigDict

MAX_STATEMENT_CHARS = 2000
MAX_CITED = 500


class RuleBroken(NamedTuple):
    field: str
    problem: str


class Evidence(BaseModel):
    """What the read model knows of one cited conversation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    conversation_id: UUID
    event_id: UUID
    categories: tuple[str, ...]
    erased: bool


EvidenceById = Mapping[UUID, Evidence]


def statement_is_1_to_2000_characters(statement: str) -> list[RuleBroken]:
    if not 1 <= len(statement) <= MAX_STATEMENT_CHARS:
        return [RuleBroken("statement", f"must be 1 to {MAX_STATEMENT_CHARS} characters "
                                        "(after trimming spaces)")]
    return []


def cites_at_least_one_conversation(ids: Sequence[UUID]) -> list[RuleBroken]:
    if not ids:
        return [RuleBroken("conversation_ids", "an insight must cite at least one conversation")]
    if len(ids) > MAX_CITED:
        return [RuleBroken("conversation_ids", f"an insight may cite at most {MAX_CITED} "
                                               "conversations")]
    return []


def cites_each_conversation_once(ids: Sequence[UUID]) -> list[RuleBroken]:
    seen: set[UUID] = set()
    broken = []
    for index, cid in enumerate(ids):
        if cid in seen:
            broken.append(RuleBroken(f"conversation_ids[{index}]", "cited more than once"))
        seen.add(cid)
    return broken


def cites_only_known_conversations(ids: Sequence[UUID], evidence: EvidenceById) -> list[RuleBroken]:
    return [RuleBroken(f"conversation_ids[{i}]",
                       "unknown conversation (never logged, or not received here yet)")
            for i, cid in enumerate(ids) if cid not in evidence]


def cites_no_erased_conversation(ids: Sequence[UUID], evidence: EvidenceById) -> list[RuleBroken]:
    return [RuleBroken(f"conversation_ids[{i}]",
                       "this conversation's participant asked to be forgotten; it cannot be cited")
            for i, cid in enumerate(ids) if cid in evidence and evidence[cid].erased]


def category_is_touched_by_the_evidence(
    category: str, ids: Sequence[UUID], evidence: EvidenceById
) -> list[RuleBroken]:
    usable = [evidence[c] for c in ids if c in evidence and not evidence[c].erased]
    if usable and not any(category in e.categories for e in usable):
        return [RuleBroken("category", "none of the cited conversations touches this category")]
    return []


def check_citation(
    statement: str, category: str, ids: Sequence[UUID], evidence: EvidenceById
) -> list[RuleBroken]:
    """Every rule an insight (draft or revision) must keep; empty when all hold."""
    counted = cites_at_least_one_conversation(ids)
    if counted:  # nothing (or far too much) to look at: per-citation problems add only noise
        return [*statement_is_1_to_2000_characters(statement), *counted]
    return [
        *statement_is_1_to_2000_characters(statement),
        *cites_each_conversation_once(ids),
        *cites_only_known_conversations(ids, evidence),
        *cites_no_erased_conversation(ids, evidence),
        *category_is_touched_by_the_evidence(category, ids, evidence),
    ]
