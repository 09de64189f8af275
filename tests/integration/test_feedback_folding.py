"""Folding a batch of facts at once leaves the graph exactly as folding them one by one does,
on a real PostgreSQL: several revisions of one insight, versions of one action and repeats of
one priority in a run, out of order, against what earlier batches left."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from eventcore.db import create_pool, migrate
from eventcore.embedded import StackEndpoints
from eventcore.store import EventStore
from services.feedback.bootstrap import MIGRATIONS
from services.feedback.facts import Fact, fact_of, record_all
from services.feedback.projections import GRAPH_TABLES, fold_all, rebuild
from tests.conftest import create_database
from tests.integration.feedback_fixtures import Upstream

pytestmark = pytest.mark.integration

INTAKE, PARTNERS = Upstream("intake"), Upstream("insight")
#: A second source of consent (a trust's own system, say): between sources, the later wins.
ELSEWHERE = Upstream("elsewhere")


async def _graph_pool(endpoints: StackEndpoints) -> asyncpg.Pool:
    url = await create_database(endpoints)
    await migrate(url, "feedback", [MIGRATIONS], source="feedback")
    return await create_pool(url, "feedback")


@pytest.fixture(scope="module")
async def pools(endpoints: StackEndpoints) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    at_once, one_by_one = await _graph_pool(endpoints), await _graph_pool(endpoints)
    yield at_once, one_by_one
    await at_once.close()
    await one_by_one.close()


def _fact(event: Any) -> Fact:
    return fact_of(event)


def _with(fact: Fact, **data: Any) -> Fact:
    return dataclasses.replace(fact, data={**fact.data, **{k: str(v) if isinstance(v, UUID) else v
                                                            for k, v in data.items()}})


class Facts:
    """Random facts over a few ids, so that runs repeat, revise and reorder them."""

    def __init__(self, rng: random.Random, people: int = 3) -> None:
        self.rng = rng
        self.people = [f"p_{uuid4().hex[:12]}" for _ in range(people)]
        self.conversations = [uuid4() for _ in range(5)]
        self.insights = [uuid4() for _ in range(3)]
        self.priorities = [uuid4() for _ in range(3)]
        self.actions = [uuid4() for _ in range(3)]

    def some(self, pool: list[UUID]) -> list[UUID]:
        return self.rng.sample(pool, self.rng.randint(1, len(pool)))

    def one(self) -> Fact:
        rng, kind = self.rng, self.rng.choice(
            ["conversation", "conversation", "consent", "consent", "insight", "insight",
             "priority", "action", "action", "erased"])
        channel = rng.choice(["email", "none"])
        earliest = rng.choice([None, date(2026, 3, rng.randint(1, 28))])
        if kind == "conversation":
            fact = _fact(INTAKE.conversation(rng.choice(self.people), channel=channel,
                                             earliest=earliest))
            return _with(fact, conversation_id=rng.choice(self.conversations))
        if kind == "consent":
            return _fact(rng.choice([INTAKE, ELSEWHERE]).consent_changed(
                rng.choice(self.people), rng.randint(2, 5), channel, earliest))
        if kind == "erased":
            return _fact(INTAKE.erased(rng.choice(self.people), 2))
        if kind == "insight":
            return _fact(PARTNERS.insight(self.some(self.conversations),
                                            insight_id=rng.choice(self.insights),
                                            category=rng.choice(["housing", "community_support"]),
                                            revision=rng.randint(1, 3)))
        if kind == "priority":
            fact = _fact(PARTNERS.priority(self.some(self.insights)))
            return _with(fact, priority_id=rng.choice(self.priorities),
                         statement=rng.choice(["first said", "said again"]))
        return _fact(PARTNERS.action(self.some(self.priorities),
                                       action_id=rng.choice(self.actions),
                                       status=rng.choice(["planned", "in_progress", "done"]),
                                       version=rng.randint(1, 3)))


async def _graph(pool: asyncpg.Pool, facts: Facts) -> dict[str, list[tuple[Any, ...]]]:
    ours = {*map(str, facts.conversations + facts.insights + facts.priorities + facts.actions),
            *facts.people}
    async with pool.acquire() as conn:
        graph = {}
        for table in GRAPH_TABLES:
            rows = await conn.fetch(f"SELECT * FROM {table}")
            graph[table] = sorted((tuple(map(str, r.values())) for r in rows
                                   if str(r[0]) in ours), key=repr)
    return graph


@pytest.mark.parametrize(("seed", "people"), [(seed, 3) for seed in range(6)]
                         + [(seed, 40) for seed in range(6, 10)])
async def test_a_batch_folds_as_its_facts_one_by_one(
    pools: tuple[asyncpg.Pool, asyncpg.Pool], seed: int, people: int
) -> None:
    """With 3 people a run of consents names some twice (folded one by one, in order); with 40
    mostly once (one statement), each row meeting what earlier batches left. Folded one by one,
    consents go by the row-at-a-time statement, so the two sides share no consent SQL; the
    conversations, written by one statement on both sides, are checked against the facts."""
    at_once, one_by_one = pools
    facts = Facts(random.Random(seed), people)
    first: dict[str, Fact] = {}  # of each conversation id, its first fact: the one that stands
    for _ in range(3):  # each batch meets what the earlier ones left
        batch = [facts.one() for _ in range(30)]
        batch.sort(key=lambda f: f.event_type)  # long runs of one type, as batches often have
        async with at_once.acquire() as conn, conn.transaction():
            await fold_all(conn, batch)
        for fact in batch:
            async with one_by_one.acquire() as conn, conn.transaction():
                await fold_all(conn, [fact])
        assert await _graph(at_once, facts) == await _graph(one_by_one, facts)
        for fact in batch:
            if fact.event_type == "ConversationLogged":
                first.setdefault(fact.data["conversation_id"], fact)
        assert (await _graph(at_once, facts))["graph_conversations"] == sorted((
            (str(f.data["conversation_id"]), f.data["participant_id"],
             str(list(f.data["categories"])), f.data["place"], f.data["held_on"],
             str(f.event_id))
            for f in first.values()), key=repr)
    graph = await _graph(at_once, facts)
    assert graph["graph_insights"] and graph["graph_actions"] and graph["graph_priorities"]
    assert graph["graph_participants"] and graph["graph_conversations"]


async def test_of_two_revisions_in_one_batch_the_later_one_links(
    pools: tuple[asyncpg.Pool, asyncpg.Pool]
) -> None:
    at_once, _ = pools
    first, second = uuid4(), uuid4()
    insight_id = uuid4()
    revised = [_fact(PARTNERS.insight([first], insight_id=insight_id, revision=2)),
               _fact(PARTNERS.insight([second], insight_id=insight_id, revision=1)),
               _fact(PARTNERS.insight([first, second], insight_id=insight_id, revision=3)),
               _fact(PARTNERS.insight([second], insight_id=insight_id, revision=3))]
    async with at_once.acquire() as conn, conn.transaction():
        await fold_all(conn, revised)
        revision = await conn.fetchval(
            "SELECT revision FROM graph_insights WHERE insight_id = $1", insight_id)
        linked = await conn.fetch("SELECT conversation_id FROM graph_insight_conversations"
                                  " WHERE insight_id = $1", insight_id)
    assert revision == 3
    assert {r["conversation_id"] for r in linked} == {first, second}  # the first revision 3


async def test_a_batch_of_facts_is_kept_whole_in_its_order_and_each_once(
    pools: tuple[asyncpg.Pool, asyncpg.Pool]
) -> None:
    """received_facts' position is the order `rebuild` refolds in: a batch's facts get theirs in
    the batch's order, by one statement; an event in it twice is kept once, as first seen."""
    at_once, _ = pools
    facts = Facts(random.Random(7), 40)
    batch = [facts.one() for _ in range(40)]
    batch[5] = dataclasses.replace(batch[5], traceparent=None)
    batch.insert(20, batch[3])  # delivered twice in one batch
    async with at_once.acquire() as conn, conn.transaction():
        await record_all(conn, batch)
        rows = await conn.fetch("SELECT * FROM received_facts WHERE event_id = ANY($1::uuid[])"
                                " ORDER BY position", [f.event_id for f in batch])
    first: dict[UUID, Fact] = {}
    for fact in batch:
        first.setdefault(fact.event_id, fact)
    kept = list(first.values())  # in order of first arrival
    assert len(rows) == len(kept) == 40
    for row, fact in zip(rows, kept, strict=True):
        assert (row["event_id"], row["event_type"], row["source"], row["sequence"],
                row["subject_version"], row["recorded_at"], row["correlation_id"],
                row["traceparent"], row["facts"]) == (
            fact.event_id, fact.event_type, fact.source, fact.sequence, fact.subject_version,
            fact.recorded_at, fact.correlation_id, fact.traceparent, dict(fact.data))
    assert rows[5]["traceparent"] is None


async def test_rebuild_refolds_the_graph_it_had(pools: tuple[asyncpg.Pool, asyncpg.Pool]
                                                ) -> None:
    _, one_by_one = pools
    facts = Facts(random.Random(99))
    batch = [facts.one() for _ in range(40)]
    async with one_by_one.acquire() as conn, conn.transaction():
        for fact in batch:
            await record_all(conn, [fact])
            await fold_all(conn, [fact])
    before = await _graph(one_by_one, facts)
    async with one_by_one.acquire() as conn:
        await rebuild(conn, EventStore("feedback"))
    assert await _graph(one_by_one, facts) == before
    assert before["graph_insights"]
