"""Insight consuming intake's topics through its inbox: dead letters, redelivery, erasure order.
Events come from a fake intake with a chain of its own; one insight app serves the module."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest

from contracts import CONVERSATIONS, PARTICIPANTS, dead_letter_topic
from eventcore.deadletter import IncomingMessage
from eventcore.embedded import StackEndpoints
from eventcore.messaging import envelope_message
from tests.integration.insight_fixtures import (
    FakeIntake,
    RunningInsight,
    eventually,
    fake_intake,
    header,
    read_topic,
    running_insight,
)

pytestmark = pytest.mark.integration
DEAD_LETTERS = dead_letter_topic("insight")


@pytest.fixture(scope="module")
async def insight(endpoints: StackEndpoints) -> AsyncIterator[RunningInsight]:
    async with running_insight(endpoints) as running:
        yield running


@pytest.fixture(scope="module")
async def feed(endpoints: StackEndpoints) -> AsyncIterator[FakeIntake]:
    async with fake_intake(endpoints) as intake:
        yield intake


async def recorded(insight: RunningInsight, event: Any) -> bool:
    return bool(await insight.fetchval(
        "SELECT true FROM conversations WHERE event_id = $1", event.id))


async def dead_letter(endpoints: StackEndpoints, value: bytes, count: int = 1) -> list[Any]:
    found = await read_topic(endpoints, DEAD_LETTERS, lambda r: r.value == value, count)
    assert len(found) == count
    return found


async def test_malformed_messages_are_dead_lettered_and_the_consumer_keeps_going(
    insight: RunningInsight, feed: FakeIntake, endpoints: StackEndpoints
) -> None:
    secret = secrets.token_hex(8)
    garbled = b'{"type": "ConversationLogged", "data": {"summary": "' + secret.encode()
    partitions = sorted(await feed.producer.partitions_for(CONVERSATIONS))
    # Other suites read these topics by the ce_id header: a buggy producer's id keeps them calm.
    stray = [("ce_id", str(uuid4()).encode())]
    for partition in partitions:  # one on every partition, so the valid one below follows one
        await feed.send(CONVERSATIONS, garbled, key=b"garbled", partition=partition, headers=stray)
    no_categories = feed.conversation().model_dump(mode="json")
    no_categories["data"]["categories"] = []
    empty = json.dumps(no_categories).encode()
    await feed.send(CONVERSATIONS, empty, key=no_categories["subject"].encode(),
                    headers=[("ce_id", no_categories["id"].encode())])
    valid = feed.conversation()
    await feed.publish(CONVERSATIONS, valid)

    await eventually(lambda: recorded(insight, valid))
    letters = await dead_letter(endpoints, garbled, len(partitions))
    assert {header(r, "dlq_reason") for r in letters} == {"body: not valid JSON"}
    assert {header(r, "dlq_original_topic") for r in letters} == {CONVERSATIONS}
    [letter] = await dead_letter(endpoints, empty)
    assert "categories" in header(letter, "dlq_reason") and secret not in header(letter, "dlq_reason")
    assert header(letter, "dlq_consumer") == "insight"


async def test_a_redelivered_conversation_has_no_second_effect(
    insight: RunningInsight, feed: FakeIntake
) -> None:
    event = feed.conversation()
    value = await feed.publish(CONVERSATIONS, event)
    await feed.publish(CONVERSATIONS, event)
    # A marker on the same partition, after the repeat: once it is through, so is the repeat.
    marker = FakeIntake(feed.producer, source="elsewhere").conversation()
    await feed.publish(CONVERSATIONS, marker, key=event.subject.encode())
    await eventually(lambda: insight.fetchval(
        "SELECT outcome FROM inbox WHERE event_id = $1", marker.id))

    assert await insight.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event.id) == 1
    assert await insight.fetchval("SELECT count(*) FROM conversations WHERE conversation_id = $1",
                                  event.data.conversation_id) == 1
    [consumer] = insight.runtime.consumers
    again = await consumer.process(IncomingMessage(CONVERSATIONS, 0, 0, None, value))
    assert again.status == "duplicate"


async def test_events_from_an_untrusted_source_are_dead_lettered_not_shown(
    insight: RunningInsight, feed: FakeIntake, endpoints: StackEndpoints
) -> None:
    forged = FakeIntake(feed.producer, source="elsewhere").conversation()
    value = await feed.publish(CONVERSATIONS, forged)
    [letter] = await dead_letter(endpoints, value)
    assert "source 'elsewhere' may not publish ConversationLogged" in header(letter, "dlq_reason")
    answer = await insight.client.get(f"/conversations/{forged.data.conversation_id}")
    assert answer.status_code == 404


async def test_a_second_event_claiming_a_known_conversation_is_dead_lettered(
    insight: RunningInsight, feed: FakeIntake, endpoints: StackEndpoints
) -> None:
    first = feed.conversation()
    rival = feed.conversation(conversation_id=first.data.conversation_id, summary="Other words.")
    await feed.publish(CONVERSATIONS, first)
    value = await feed.publish(CONVERSATIONS, rival)
    [letter] = await dead_letter(endpoints, value)
    assert "already recorded from a different event" in header(letter, "dlq_reason")
    shown = (await insight.client.get(f"/conversations/{first.data.conversation_id}")).json()
    assert shown["event_id"] == str(first.id) and shown["summary"] == first.data.summary


async def test_an_erasure_that_overtakes_its_conversation_still_erases_it(
    insight: RunningInsight, feed: FakeIntake
) -> None:
    participant = "p_" + secrets.token_hex(6)
    erasure = feed.erasure(participant)
    await feed.publish(PARTICIPANTS, erasure)
    await eventually(lambda: insight.fetchval(
        "SELECT outcome = 'applied' FROM inbox WHERE event_id = $1", erasure.id))
    late = feed.conversation(participant_id=participant)
    await feed.publish(CONVERSATIONS, late)
    await eventually(lambda: recorded(insight, late))
    shown = (await insight.client.get(f"/conversations/{late.data.conversation_id}")).json()
    assert shown["erased"] is True and shown["summary"] is None and shown["equity"] is None
    assert shown["quote_count"] == len(late.data.quotes)


async def test_headers_with_no_value_and_a_reply_to_disturb_nothing(
    insight: RunningInsight, feed: FakeIntake, endpoints: StackEndpoints
) -> None:
    """A header may have no value at all (None): the batch is parsed, the event applied under
    the trace stored with it, and the next one too. A `reply_to` header is not answered: the
    consumer publishes nowhere a message names."""
    odd, after = feed.conversation(), feed.conversation()
    mark = f"hostile-{uuid4().hex}"
    message = envelope_message(CONVERSATIONS, odd.model_dump(mode="json"))
    headers: list[tuple[str, Any]] = [
        (k, None if k in ("traceparent", "ce_type") else v) for k, v in message.headers]
    headers += [("tracestate", None), ("x-none", None), ("reply_to", DEAD_LETTERS.encode()),
                ("correlation_id", mark.encode())]
    await feed.send(CONVERSATIONS, message.value, key=message.key, headers=headers)
    await feed.publish(CONVERSATIONS, after, key=message.key)
    await eventually(lambda: recorded(insight, after))
    assert await recorded(insight, odd)
    assert await insight.fetchval(
        "SELECT outcome FROM inbox WHERE event_id = $1", odd.id) == "applied"
    answers = await read_topic(endpoints, DEAD_LETTERS, lambda r: header(r, "correlation_id")
                               == mark, timeout_s=2)
    assert answers == []


def as_message(event: Any, offset: int) -> IncomingMessage:
    value = envelope_message(CONVERSATIONS, event.model_dump(mode="json")).value
    return IncomingMessage(CONVERSATIONS, 0, offset, None, value)


async def test_a_batch_records_every_conversation_and_refuses_only_the_conflicting_one(
    insight: RunningInsight, feed: FakeIntake
) -> None:
    person = "p_" + secrets.token_hex(6)
    erased_first = feed.erasure(person)
    good = [feed.conversation() for _ in range(5)] + [feed.conversation(participant_id=person)]
    twin = feed.conversation(conversation_id=good[1].data.conversation_id)  # another event
    batch = [*map(as_message, good[:3], range(3)), as_message(twin, 3),
             *map(as_message, good[3:], range(4, 7))]
    [consumer] = insight.runtime.consumers
    await consumer.process(IncomingMessage(PARTICIPANTS, 0, 0, None, envelope_message(
        PARTICIPANTS, erased_first.model_dump(mode="json")).value))
    outcomes = await consumer.process_batch(batch)
    assert [o.status for o in outcomes] == ["applied"] * 3 + ["dead_lettered"] + ["applied"] * 3
    assert "conversation already recorded from a different event" in (outcomes[3].reason or "")
    for event in good:
        assert await recorded(insight, event)
    assert not await recorded(insight, twin)
    # The erasure came first: that person's words were never kept.
    assert await insight.fetchval(
        "SELECT erased AND summary IS NULL FROM conversations WHERE event_id = $1", good[-1].id)
    again = await consumer.process_batch(batch)
    assert [o.status for o in again] == ["duplicate"] * 7


async def test_a_batch_keeps_each_conversations_own_lists_and_answers(
    insight: RunningInsight, feed: FakeIntake
) -> None:
    """Recorded in one statement (the batch's rows as one JSON text), each conversation keeps
    its own categories, support and equity answers, whatever the lengths of its neighbours'
    lists, and its words exactly as sent, however much of JSON's own syntax they hold."""
    words = 'She said "it\'s fine" \\ not\n\tfine — ünïcode 🌱 {"a": [1, null]} \\u0041'
    shapes = [(["housing"], [], None, {}),
              (["housing", "cultural_factors", "community_support"], ["talking therapies"],
               {"ethnicity": "Prefer not to say"}, {}),
              (["employment"], ["carers' centre", "a, b and c", "food bank"], None, {}),
              (["community_support", "employment"], [], {"ethnicity": "Bangladeshi"}, {}),
              (["housing"], ['"quoted" \\ group', "🌱"], {"ethnicity": 'Mixed "other" \\'},
               {"summary": words, "place": "Saint-Étienne \"centre\""})]
    events = [feed.conversation(categories=c, support_shared=s, equity=e, **more)
              for c, s, e, more in shapes]
    assert events[-1].data.summary == words
    [consumer] = insight.runtime.consumers
    outcomes = await consumer.process_batch([as_message(e, n) for n, e in enumerate(events)])
    assert [o.status for o in outcomes] == ["applied"] * len(events)
    for event in events:
        [row] = await insight.fetch(
            "SELECT categories, support_shared, equity, summary, quote_count, held_on, place,"
            " conversation_id, source, source_sequence, participant_id, setting,"
            " categories_version, erased, logged_at FROM conversations WHERE event_id = $1",
            event.id)
        data = event.data
        equity = (None if data.equity is None
                  else data.equity.model_dump(mode="json", exclude_none=True))
        assert (row["categories"], row["support_shared"], row["equity"], row["summary"],
                row["quote_count"], row["held_on"], row["place"]) == (
            list(data.categories), list(data.support_shared), equity, data.summary,
            len(data.quotes), data.held_on, data.place)
        assert (row["conversation_id"], row["source"], row["source_sequence"],
                row["participant_id"], row["setting"], row["categories_version"], row["erased"],
                row["logged_at"]) == (
            data.conversation_id, event.source, event.sequence, data.participant_id,
            data.setting, data.categories_version, False, event.recordedtime)
