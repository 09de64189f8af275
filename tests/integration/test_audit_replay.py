"""Replay against the real broker (own topics, so other tests' traffic is not replayed) and
against real event stores in PostgreSQL: untouched histories verify, tampered ones name the
first break, and an erased participant keeps the history verifying."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from contracts import EventDraft
from contracts.envelope import CHAIN_FIELDS
from eventcore.db import create_pool, migrate
from eventcore.embedded import StackEndpoints, create_topics
from eventcore.messaging import OutgoingMessage, make_producer, send_all
from eventcore.settings import CoreSettings
from eventcore.store import EventStore
from golden_thread.audit import parallel_store
from golden_thread.audit.cli import audit_app
from golden_thread.audit.model import BreakKind, Verification
from golden_thread.audit.run import HistorySource, replay_history
from golden_thread.audit.scenario import Story, build_story
from golden_thread.audit.trace import trace_action
from golden_thread.audit.verify import Replay, ReplayOptions
from tests.conftest import create_database

pytestmark = pytest.mark.integration
Message = dict[str, Any]
Tamper = Callable[[list[Message]], None]
STREAMS = {"ConversationLogged": "conversations", "ParticipantErased": "participants",
           "ConsentChanged": "participants", "InsightDrafted": "insights",
           "PriorityAgreed": "priorities", "ActionTaken": "actions",
           "ParticipantNotified": "notifications"}


@pytest.fixture(scope="module")
def story() -> Story:
    return build_story(seed=31, conversations=30)


async def publish(endpoints: StackEndpoints, messages: list[Message]) -> tuple[str, ...]:
    """Publish as the relays would (key = subject, 3 partitions) onto this test's own topics."""
    prefix = f"audit{secrets.token_hex(4)}"
    topic_of = {t: f"{prefix}.{s}.v1" for t, s in STREAMS.items()}
    topics = tuple(sorted(set(topic_of.values())))
    await create_topics(endpoints.kafka_bootstrap_servers, topics, partitions=3)
    producer = make_producer(CoreSettings(kafka_enable_idempotence=False),
                             endpoints.kafka_bootstrap_servers, "audit-test")
    await producer.start()
    try:
        await send_all(producer, [
            OutgoingMessage(topic_of[m["type"]], m["subject"].encode(),
                            json.dumps(m, separators=(",", ":")).encode())
            for m in messages])
    finally:
        await producer.stop()
    return topics


async def replay_topics(endpoints: StackEndpoints, topics: tuple[str, ...],
                        **options: Any) -> tuple[Replay, Verification]:
    source = HistorySource(bootstrap=endpoints.kafka_bootstrap_servers, topics=topics)
    return await replay_history(source, ReplayOptions(**options), quiet=True)


def messages_of(story: Story) -> list[Message]:
    return [e.model_dump(mode="json") for e in story.events]


def at(messages: list[Message], source: str, sequence: int) -> int:
    return next(i for i, m in enumerate(messages)
                if m["source"] == source and m["sequence"] == sequence)


async def test_an_untouched_history_on_the_broker_verifies_with_redeliveries(
    endpoints: StackEndpoints, story: Story
) -> None:
    messages = messages_of(story)
    resent = messages[20:35]  # a relay crashed after the broker's ack and re-sent a batch
    topics = await publish(endpoints, messages + resent)
    replay, result = await replay_topics(endpoints, topics)
    assert result.verified, result.first_break
    assert (result.events, result.duplicates) == (len(story.events), len(resent))
    assert result.counts_by_type["ParticipantErased"] == 1  # erasure keeps the chain whole
    action = str(story.actions[0].data.action_id)
    assert trace_action(replay.graph, action)["told"]


def _alter(ms: list[Message]) -> None:
    ms[at(ms, "intake", 5)]["data"]["place"] = "Somewhere else"


def _delete(ms: list[Message]) -> None:
    del ms[at(ms, "insight", 3)]


def _reorder(ms: list[Message]) -> None:
    a, b = at(ms, "priority", 2), at(ms, "priority", 3)
    chain_a = {k: ms[a][k] for k in CHAIN_FIELDS}
    chain_b = {k: ms[b][k] for k in CHAIN_FIELDS}
    ms[a], ms[b] = {**ms[b], **chain_a}, {**ms[a], **chain_b}


def _forge(ms: list[Message]) -> None:
    genuine = ms[at(ms, "feedback", 2)]
    ms.append({**genuine, "id": "0badc0de-0000-4000-8000-000000000000",
               "data": {**genuine["data"], "channel": "peer_in_person"}})


@pytest.mark.parametrize(("tamper", "source", "sequence", "kind"), [
    (_alter, "intake", 5, BreakKind.CHAIN),
    (_delete, "insight", 4, BreakKind.CHAIN),
    (_reorder, "priority", 2, BreakKind.CHAIN),
    (_forge, "feedback", 2, BreakKind.CONFLICT),
], ids=["altered", "deleted", "reordered", "forged"])
async def test_a_tampered_history_on_the_broker_names_its_first_break(
    endpoints: StackEndpoints, story: Story, tamper: Tamper, source: str, sequence: int,
    kind: BreakKind,
) -> None:
    messages = messages_of(story)
    tamper(messages)
    _, result = await replay_topics(endpoints, await publish(endpoints, messages))
    first = result.first_break
    assert not result.verified and first is not None
    assert (first.source, first.sequence, first.kind) == (source, sequence, kind)
    named = next(m for m in messages if m["source"] == source and m["sequence"] == sequence
                 and (kind is not BreakKind.CONFLICT or m["id"].startswith("0badc0de")))
    assert first.event_id == named["id"]


async def build_stores(endpoints: StackEndpoints, story: Story) -> str:
    """Each service's real event store (its own schema), appended to as the service would."""
    url = await create_database(endpoints)
    pools = {}
    for source in ("intake", "insight", "priority", "feedback"):
        await migrate(url, source, [], source=source)
        pools[source] = await create_pool(url, source, max_size=1)
    try:
        for event in story.events:
            draft: EventDraft[Any] = EventDraft.model_validate(
                {k: v for k, v in event.model_dump().items() if k not in CHAIN_FIELDS})
            async with pools[event.source].acquire() as conn:
                await EventStore(event.source).append(conn, [draft])
    finally:
        for pool in pools.values():
            await pool.close()
    return url


async def test_the_event_stores_replay_and_verify_when_the_broker_has_no_history(
    endpoints: StackEndpoints, story: Story
) -> None:
    url = await build_stores(endpoints, story)
    source = HistorySource(store_url=url, schemas=("intake", "insight", "priority", "feedback",
                                                   "elsewhere"))
    _, result = await replay_history(source, ReplayOptions(), quiet=True)
    assert result.verified, result.first_break
    assert result.events == len(story.events)
    heads = {s: v.head.hash for s, v in result.sources.items()}
    assert heads == {e.source: e.hash for e in story.events}  # the stores chained as we did
    assert result.notes == ("schema elsewhere has no event store; skipped",)

    conn = await asyncpg.connect(url)  # a database administrator rewrites history
    try:
        await conn.execute("ALTER TABLE insight.events DISABLE TRIGGER events_append_only")
        # The stored text edited in place, still in the layout the store writes it in.
        await conn.execute("UPDATE insight.events SET body = regexp_replace(body::text,"
                           " '\"category\":\"[a-z_]+\"', '\"category\":\"continuity_of_care\"')::json"
                           " WHERE sequence = 2")
        await conn.execute("UPDATE insight.events SET body = jsonb_set(body::jsonb,"
                           " '{data,statement}', '\"rewritten\"')::json WHERE sequence = 3")
        await conn.execute("ALTER TABLE priority.events DISABLE TRIGGER events_append_only")
        await conn.execute("DELETE FROM priority.events WHERE sequence = 2")
        await conn.execute("ALTER TABLE intake.events DISABLE TRIGGER events_append_only")
        await conn.execute("UPDATE intake.events SET body = '[]' WHERE sequence = 2")
        await conn.execute("UPDATE intake.events SET body = '{}' WHERE sequence = 4")
    finally:
        await conn.close()
    _, tampered = await replay_history(HistorySource(store_url=url), ReplayOptions(), quiet=True)
    found = {(b.source, b.sequence) for b in tampered.breaks if b.kind is BreakKind.CHAIN}
    assert {("insight", 2), ("insight", 3), ("priority", 3), ("intake", 3), ("intake", 5)
            } <= found
    contract = [b for b in tampered.breaks if b.kind is BreakKind.CONTRACT]
    assert len(contract) == 2  # the two bodies that are no longer events
    assert tampered.first_break is not None and not tampered.verified


async def test_events_stored_as_jsonb_before_migration_004_still_verify_and_publish(
    endpoints: StackEndpoints, story: Story
) -> None:
    """Migration 004 turned `events.body` from jsonb into json with `USING body::json`: rows
    stored before it keep jsonb's printed form (keys reordered, spaces), not the canonical text
    their digest covers. They must verify all the same (by the canonical form of the decoded
    body), and read back, as the relay reads them, into the envelopes they were."""
    url = await build_stores(endpoints, story)
    conn = await asyncpg.connect(url)
    try:
        for schema in ("intake", "insight", "priority", "feedback"):
            await conn.execute(f"ALTER TABLE {schema}.events DISABLE TRIGGER events_append_only")
            await conn.execute(f"UPDATE {schema}.events SET body = body::jsonb::json")
            await conn.execute(f"ALTER TABLE {schema}.events ENABLE TRIGGER events_append_only")
        assert await conn.fetchval(  # what jsonb prints: not the canonical text
            "SELECT body::text LIKE '{\"id\": %' FROM intake.events WHERE sequence = 1")
    finally:
        await conn.close()
    _, result = await replay_history(HistorySource(store_url=url), ReplayOptions(), quiet=True)
    assert result.verified, result.first_break
    assert result.events == len(story.events)
    pool = await create_pool(url, "insight")
    try:
        async with pool.acquire() as conn:
            read = await EventStore("insight").read_after(conn, 0, 1_000)
    finally:
        await pool.close()
    written = [e for e in story.events if e.source == "insight"]
    assert [r.envelope for r in read] == [e.model_dump(mode="json") for e in written]


def test_the_replay_command_reads_the_broker_and_the_stores(
    endpoints: StackEndpoints, story: Story, tmp_path: Path
) -> None:
    messages = messages_of(story)
    _alter(messages)
    topics = asyncio.run(publish(endpoints, messages))
    out = tmp_path / "broker.json"
    result = CliRunner().invoke(audit_app, [
        "replay", "--bootstrap", endpoints.kafka_bootstrap_servers, "--topics", ",".join(topics),
        "--json", str(out), "--progress-every", "10"])
    assert result.exit_code == 1, result.output
    first = json.loads(out.read_text())["first_break"]
    assert (first["source"], first["sequence"]) == ("intake", 5)
    assert f"intake #5 (event {first['event_id']})" in result.output

    url = asyncio.run(build_stores(endpoints, story))
    out = tmp_path / "stores.json"
    result = CliRunner().invoke(audit_app, ["replay", "--from-store", url, "--json", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["verified"] is True and summary["events"] == len(story.events)
    assert summary["notes"] == []


async def test_a_long_store_replay_in_worker_processes_finds_what_one_process_finds(
    endpoints: StackEndpoints, story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await build_stores(endpoints, story)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ALTER TABLE intake.events DISABLE TRIGGER events_append_only")
        await conn.execute("UPDATE intake.events SET body = jsonb_set(body::jsonb, '{data,place}',"
                           " '\"Elsewhere\"')::json WHERE sequence = 9")
        await conn.execute("DELETE FROM intake.events WHERE sequence = 12")
    finally:
        await conn.close()
    monkeypatch.setattr(parallel_store, "RANGE", 7)  # many ranges, in two workers

    def source() -> HistorySource:
        return HistorySource(store_url=url, schemas=("intake", "elsewhere", "insight",
                                                     "priority", "feedback"))

    _, alone = await replay_history(source(), ReplayOptions(), quiet=True, workers=0)
    replayed, parallel = await replay_history(source(), ReplayOptions(parallel_after=1),
                                              quiet=True, workers=2)
    assert parallel.as_json() == alone.as_json()
    assert {("intake", 9), ("intake", 13)} <= {(b.source, b.sequence) for b in parallel.breaks}
    assert parallel.notes == ("schema elsewhere has no event store; skipped",)
    assert trace_action(replayed.graph, str(story.actions[0].data.action_id))["told"]


async def test_a_cancelled_store_replay_stops_folding_and_its_workers_promptly(
    endpoints: StackEndpoints, story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C on `audit replay --from-store` cancels the replay: the fold stops after the range
    it is on and the worker processes go, instead of the whole history being read first."""
    url = await build_stores(endpoints, story)
    monkeypatch.setattr(parallel_store, "RANGE", 1)  # a range per event: many ranges
    folded: list[int] = []
    fold = Replay.feed_records

    def slow_fold(self: Replay, records: Any) -> None:
        time.sleep(0.05)
        folded.append(1)
        fold(self, records)

    monkeypatch.setattr(Replay, "feed_records", slow_fold)
    replaying = asyncio.create_task(replay_history(
        HistorySource(store_url=url), ReplayOptions(parallel_after=1), quiet=True, workers=2))
    while len(folded) < 5:
        await asyncio.sleep(0.01)
    replaying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await replaying
    await asyncio.sleep(0.5)  # at most the range being folded
    stopped_at = len(folded)
    await asyncio.sleep(0.5)
    assert len(folded) == stopped_at < len(story.events) / 2
    assert not [p for p in multiprocessing.active_children() if p.name == "audit-replay-worker"]
