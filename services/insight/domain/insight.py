"""The insight aggregate, pure: state folded from its InsightDrafted history, and decide
functions that return the next InsightDrafted or raise why not."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from contracts import InsightDrafted
from services.insight.domain.commands import DraftInsight, ReviseInsight
from services.insight.domain.rules import EvidenceById, RuleBroken, check_citation


class Insight(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    insight_id: UUID
    revision: int
    statement: str
    category: str
    conversation_ids: tuple[UUID, ...]


class RulesBroken(Exception):
    """The command breaks one or more rules; nothing is recorded."""

    def __init__(self, problems: list[RuleBroken]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.problem}" for p in problems))
        self.problems = problems


class StaleRevision(Exception):
    """The edit started from a revision that is no longer the latest."""

    def __init__(self, based_on: int, latest: int) -> None:
        super().__init__(f"edit based on revision {based_on}, latest is {latest}")
        self.based_on = based_on
        self.latest = latest


def evolve(state: Insight | None, event: InsightDrafted) -> Insight:
    expected = 1 if state is None else state.revision + 1
    if event.revision != expected or (state is not None and state.insight_id != event.insight_id):
        raise ValueError(f"revision {event.revision} does not follow (expected {expected})")
    return Insight.model_validate(event.model_dump())


def fold(history: Iterable[InsightDrafted]) -> Insight | None:
    state: Insight | None = None
    for event in history:
        state = evolve(state, event)
    return state


def decide_draft(insight_id: UUID, cmd: DraftInsight, evidence: EvidenceById) -> InsightDrafted:
    _require(check_citation(cmd.statement, cmd.category, cmd.conversation_ids, evidence))
    return InsightDrafted(insight_id=insight_id, revision=1, statement=cmd.statement,
                          category=cmd.category, conversation_ids=cmd.conversation_ids)


def decide_revision(state: Insight, cmd: ReviseInsight, evidence: EvidenceById) -> InsightDrafted:
    if cmd.based_on_revision is not None and cmd.based_on_revision != state.revision:
        raise StaleRevision(cmd.based_on_revision, state.revision)
    broken = check_citation(cmd.statement, cmd.category, cmd.conversation_ids, evidence)
    if not broken and _unchanged(state, cmd):
        broken = [RuleBroken("body", "the revision changes nothing: statement, category and "
                                     "cited conversations are as in the latest revision")]
    _require(broken)
    return InsightDrafted(insight_id=state.insight_id, revision=state.revision + 1,
                          statement=cmd.statement, category=cmd.category,
                          conversation_ids=cmd.conversation_ids)


def causation_ids(payload: InsightDrafted, evidence: EvidenceById) -> tuple[str, ...]:
    """The ConversationLogged event ids the insight rests on, in citation order."""
    return tuple(str(evidence[cid].event_id) for cid in payload.conversation_ids)


def _unchanged(state: Insight, cmd: ReviseInsight) -> bool:
    return (state.statement, state.category, state.conversation_ids) == (
        cmd.statement, cmd.category, cmd.conversation_ids)


def _require(broken: list[RuleBroken]) -> None:
    if broken:
        raise RulesBroken(broken)
