"""What the priority service consumes: insights, and actions trust systems publish themselves."""

from __future__ import annotations

import json
import logging
import random
import secrets
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest

from contracts import dead_letter_topic
from contracts.topics import ACTIONS, INSIGHTS
from eventcore.deadletter import IncomingMessage
from eventcore.embedded import StackEndpoints
from tests.integration.priority_fixtures import (
    FakeSource,
    RunningPriority,
    agree_priority,
    drafted_insights,
    eventually,
    produce,
    read_topic,
    running_priority,
)

pytestmark = pytest.mark.integration
DEAD_LETTERS = dead_letter_topic("priority")


@pytest.fixture(scope="module")
async def priority(endpoints: StackEndpoints) -> AsyncIterator[RunningPriority]:
    async with running_priority(endpoints) as running:
        yield running


@pytest.fixture(scope="module")
async def priority_id(priority: RunningPriority, endpoints: StackEndpoints) -> str:
    insights = await drafted_insights(priority, FakeSource(endpoints))
    decision = await agree_priority(priority, insights)
    return str(decision["priority_id"])


async def action_row(priority: RunningPriority, action_id: Any) -> dict[str, Any] | None:
    listed = (await priority.client.get("/actions", params={"limit": 500})).json()
    return next((a for a in listed if a["action_id"] == str(action_id)), None)


async def dead_letter(endpoints: StackEndpoints, key: bytes) -> Any:
    letters = await read_topic(endpoints, DEAD_LETTERS, lambda r: r.key == key)
    assert letters, "no dead letter arrived"
    return letters[0]


async def test_insights_keep_their_latest_revision_and_a_redelivery_has_no_second_effect(
    priority: RunningPriority, endpoints: StackEndpoints
) -> None:
    source = FakeSource(endpoints)
    first = source.insight()
    second = source.insight(first.data.insight_id, revision=2)
    await source.publish(INSIGHTS, first, first, second)  # same key: one partition, in order

    async def revised() -> Any:
        found = await priority.fetchval(
            "SELECT event_id FROM insights WHERE insight_id = $1 AND revision = 2",
            first.data.insight_id)
        return found

    assert await eventually(revised) == second.id
    assert await priority.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = 'priority' AND event_id = $1", first.id) == 1
    again = IncomingMessage(INSIGHTS, 0, 0, None, first.model_dump_json().encode())
    assert (await priority.runtime.consumers[0].process(again)).status == "duplicate"
    [shown] = [i for i in (await priority.client.get("/insights")).json()
               if i["insight_id"] == str(first.data.insight_id)]
    assert shown["revision"] == 2 and len(shown["conversation_ids"]) == 2


async def test_a_trust_systems_action_is_recorded_and_its_later_versions_follow(
    priority: RunningPriority, endpoints: StackEndpoints, priority_id: str
) -> None:
    trust = FakeSource(endpoints)
    planned = trust.action([priority_id], status="planned")
    done = trust.action([priority_id], action_id=planned.data.action_id, version=2, status="done")
    await trust.publish(ACTIONS, planned, planned, done)

    async def finished() -> Any:
        row = await action_row(priority, planned.data.action_id)
        return row if row and row["version"] == 2 else None

    row = await eventually(finished)
    assert row["source"] == trust.name and row["status"] == "done"
    assert row["event_id"] == str(done.id) and row["priority_ids"] == [priority_id]
    on_priority = (await priority.client.get(f"/priorities/{priority_id}")).json()["actions"]
    assert str(planned.data.action_id) in {a["action_id"] for a in on_priority}
    update = await priority.client.post(f"/actions/{planned.data.action_id}/status",
                                        json={"recorded_by": "lead_1", "status": "planned"})
    assert update.status_code == 409, "its status is the trust system's to change"


@pytest.mark.parametrize(("spoil", "reason"), [
    (lambda m: m.replace(b'"status":"planned"', b'"status":"finished"'), "data.status"),
    (lambda m: m[:40], "body: not valid JSON"),
    (lambda m: m.replace(b'"type":"ActionTaken"', b'"type":"ActionMaybeTaken"'), "type"),
])
async def test_an_invalid_message_is_dead_lettered_with_its_reason_and_consuming_goes_on(
    priority: RunningPriority, endpoints: StackEndpoints, priority_id: str, spoil: Any,
    reason: str,
) -> None:
    trust = FakeSource(endpoints)
    key = secrets.token_hex(8).encode()
    bad = spoil(trust.action([priority_id]).model_dump_json().encode())
    good = trust.action([priority_id])
    await produce(endpoints, ACTIONS, [(key, bad, [("origin", b"trust-test")])])
    await trust.publish(ACTIONS, good)

    await eventually(lambda: action_row(priority, good.data.action_id))
    letter = await dead_letter(endpoints, key)
    headers = dict(letter.headers)
    assert letter.value == bad and headers["origin"] == b"trust-test"
    assert reason in headers["dlq_reason"].decode()
    assert b"finished" not in headers["dlq_reason"]
    assert headers["dlq_original_topic"] == ACTIONS.encode()


async def test_an_action_citing_a_priority_never_agreed_is_dead_lettered(
    priority: RunningPriority, endpoints: StackEndpoints, priority_id: str
) -> None:
    trust = FakeSource(endpoints)
    unknown = uuid4()
    stray = trust.action([priority_id, unknown])
    await trust.publish(ACTIONS, stray)
    letter = await dead_letter(endpoints, str(stray.data.action_id).encode())
    reason = dict(letter.headers)["dlq_reason"].decode()
    assert "rejected by priority" in reason and str(unknown) in reason
    assert str(priority_id) not in reason
    assert await action_row(priority, stray.data.action_id) is None
    # The inbox row is written once the letter is sent (so the two are seen in that order).
    assert await eventually(lambda: priority.fetchval(
        "SELECT outcome FROM inbox WHERE event_id = $1", stray.id)) == "dead_lettered"


async def test_own_actions_coming_back_are_ignored_and_an_impostor_is_dead_lettered(
    priority: RunningPriority, endpoints: StackEndpoints, priority_id: str
) -> None:
    own = await priority.client.post("/actions", json={
        "recorded_by": "lead_1", "priority_ids": [priority_id], "description": "Evening clinic.",
        "service": "talking therapies", "place": "Hackney", "framework": "NHS Talking Therapies",
        "framework_area": "Access", "status": "planned"})
    assert own.status_code == 201, own.text
    event_id = own.json()["event_id"]
    assert await eventually(lambda: priority.fetchval(
        "SELECT outcome FROM inbox WHERE event_id = $1", event_id)) == "applied"
    row = await action_row(priority, own.json()["action_id"])
    assert row is not None and row["version"] == 1 and row["source"] == "priority"

    impostor = FakeSource(endpoints, name="priority").action([priority_id])
    await FakeSource(endpoints).publish(ACTIONS, impostor)
    letter = await dead_letter(endpoints, str(impostor.data.action_id).encode())
    assert "not in the priority store" in dict(letter.headers)["dlq_reason"].decode()
    assert await action_row(priority, impostor.data.action_id) is None
    assert json.loads(letter.value)["source"] == "priority"


async def test_a_batch_of_revisions_out_of_order_keeps_the_latest_once(
    priority: RunningPriority, endpoints: StackEndpoints
) -> None:
    source = FakeSource(endpoints)
    first = source.insight()
    revisions = [first, *(source.insight(first.data.insight_id, revision=r) for r in (3, 2))]
    others = [source.insight() for _ in range(4)]
    batch = [IncomingMessage(INSIGHTS, 0, n, None, e.model_dump_json().encode())
             for n, e in enumerate([*revisions, *others, first])]
    outcomes = await priority.runtime.consumers[0].process_batch(batch)
    assert [o.status for o in outcomes] == ["applied"] * 7 + ["duplicate"]
    assert await priority.fetchval("SELECT event_id FROM insights WHERE insight_id = $1",
                                   first.data.insight_id) == revisions[1].id  # revision 3
    for event in others:
        assert await priority.fetchval("SELECT revision FROM insights WHERE insight_id = $1",
                                       event.data.insight_id) == 1


async def test_a_batch_of_drafts_leaves_each_insight_as_applying_them_one_by_one_would(
    priority: RunningPriority, endpoints: StackEndpoints, caplog: pytest.LogCaptureFixture
) -> None:
    """Drafts of a few insights in one batch, revisions in any order and repeated, each citing its
    own number of conversations, two insights already stored (one above the batch's highest
    revision, one equal to it): each insight is left with the first draft of its highest
    revision, citing exactly that draft's conversations, by the batch's one statement (not by
    the one-message path a failed batch falls back to)."""
    rng = random.Random(11)
    source = FakeSource(endpoints)
    ids = [uuid4() for _ in range(6)]

    def draft(insight_id: Any, revision: int) -> Any:
        cites = [uuid4() for _ in range(rng.randint(1, 6))]
        return source.insight(insight_id, revision=revision, cites=cites)

    stored = [draft(ids[0], 6), draft(ids[1], 5)]
    batch = [draft(rng.choice(ids), rng.randint(1, 5)) for _ in range(40)]
    top = {i: max((e.data.revision for e in batch if e.data.insight_id == i), default=0)
           for i in ids}
    assert top[ids[0]] < 6 and top[ids[1]] == 5  # the stored rows must win: above, and a tie
    assert any(sum(1 for e in batch if e.data.insight_id == i and e.data.revision == top[i]) > 1
               for i in ids)  # a tie inside the batch too: the first draft must win it
    consumer = priority.runtime.consumers[0]
    for n, event in enumerate(stored):
        await consumer.process_batch([IncomingMessage(INSIGHTS, 0, n, None,
                                                      event.model_dump_json().encode())])
    with caplog.at_level(logging.INFO, logger="eventcore.consumer"):
        outcomes = await consumer.process_batch(
            [IncomingMessage(INSIGHTS, 0, n, None, e.model_dump_json().encode())
             for n, e in enumerate(batch, start=len(stored))])
    assert {o.status for o in outcomes} == {"applied"}
    assert "applying one by one" not in caplog.text  # the batch statement did the work

    standing: dict[Any, Any] = {}
    for event in [*stored, *batch]:
        held = standing.get(event.data.insight_id)
        if held is None or held.data.revision < event.data.revision:
            standing[event.data.insight_id] = event
    assert standing[ids[0]] is stored[0] and standing[ids[1]] is stored[1]
    for insight_id, event in standing.items():
        row = await priority.fetchrow(
            "SELECT revision, event_id, conversation_ids, statement, category, source, drafted_at"
            " FROM insights WHERE insight_id = $1", insight_id)
        assert row is not None
        assert (row["revision"], row["event_id"]) == (event.data.revision, event.id)
        assert list(row["conversation_ids"]) == list(event.data.conversation_ids)
        assert (row["statement"], row["category"], row["source"], row["drafted_at"]) == (
            event.data.statement, event.data.category, event.source, event.time)
