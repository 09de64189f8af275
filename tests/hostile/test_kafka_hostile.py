"""Every consumed topic, fed hostile messages on the real broker: each consumer of the topic
dead-letters every one on `<consumer>.deadletter.v1` (original bytes kept, the reason in
`dlq_reason`, never repeating the input), applies none of them, and is not stuck: a valid
message produced after them on every partition is applied."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from hypothesis import HealthCheck, given, settings

from contracts import ContractError, parse_event
from contracts.topics import (
    ACTIONS,
    CONVERSATIONS,
    INSIGHTS,
    PARTICIPANTS,
    PRIORITIES,
    dead_letter_topic,
)
from eventcore.embedded import StackEndpoints
from tests.hostile.conftest import CASES_TRIED, Services, in_thread
from tests.hostile.kafka_cases import (
    CONSUMERS,
    Hostile,
    explicit_messages,
    hostile_message,
    refused_by_rules,
    valid_event,
)
from tests.hostile.strategies import MARK
from tests.integration.priority_fixtures import FakeSource, agree_priority, drafted_insights

pytestmark = pytest.mark.integration
PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

EXAMPLES = int(os.environ.get("GT_HOSTILE_KAFKA_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
async def producer(endpoints: StackEndpoints) -> AsyncIterator[AIOKafkaProducer]:
    started = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers, acks="all",
                               enable_idempotence=endpoints.kafka_enable_idempotence,
                               max_request_size=4 * 1024 * 1024)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


def generate(topic: str) -> list[Hostile]:
    """Hostile messages for the topic; each is checked against the contract as it is made."""
    made: list[Hostile] = []
    tried = CASES_TRIED[f"kafka {topic}"]

    @SETTINGS
    @given(message=hostile_message(topic))
    def test(message: Hostile) -> None:
        tried[message.kind] += 1
        assert_contract_refuses(message)
        made.append(message)

    test()
    for message in explicit_messages(topic):
        tried[message.kind] += 1
        assert_contract_refuses(message)
        made.append(message)
    for message in refused_by_rules(topic):
        tried[message.kind] += 1
        assert parse_event(message.value or b""), message  # valid: refused by a rule, not the contract
        made.append(message)
    return made


def assert_contract_refuses(message: Hostile) -> None:
    try:
        parse_event(message.value or b"")
    except ContractError as refused:
        assert MARK not in unechoed(refused), f"the reason repeats the input: {refused}"
    else:
        raise AssertionError(f"the contract accepts {message!r}")


def reason_unechoed(reason: str) -> str:
    """A dead-letter reason less plain-identifier names of unknown fields (as `unechoed`)."""
    kept = []
    for part in reason.split("; "):
        field, _, problem = part.partition(": ")
        plain = PLAIN_KEY.match(field.rsplit(".", 1)[-1])
        kept.append("" if problem == "Extra inputs are not permitted" and plain else part)
    return "; ".join(kept)


def unechoed(refused: ContractError) -> str:
    """The reason less the names of unknown fields that are plain identifiers (named on purpose,
    see contracts.problems.dotted); nothing else a producer sent may be repeated."""
    return "; ".join(
        ("<plain unknown field>" if p.problem == "Extra inputs are not permitted"
         and PLAIN_KEY.match(p.field.rsplit(".", 1)[-1]) else p.field) + ": " + p.problem
        for p in refused.problems)


async def produce(producer: AIOKafkaProducer, topic: str, messages: list[Hostile]) -> list[Hostile]:
    """Send them all (waiting for each ack); returns those the broker took."""
    sent = []
    for message in messages:
        try:
            await (await producer.send(topic, message.value, key=message.key,
                                       headers=message.headers))
        except MessageSizeTooLargeError:
            continue  # the broker itself refuses it: nothing reaches a consumer
        sent.append(message)
    return sent


async def follow_ups(services: Services, producer: AIOKafkaProducer, topic: str
                     ) -> list[dict[str, Any]]:
    """One valid event on every partition of the topic, produced after the hostile ones."""
    partitions = sorted(await producer.partitions_for(topic))
    events = [await valid_follow_up(services, topic) for _ in partitions]
    for partition, event in zip(partitions, events, strict=True):
        assert parse_event(json.dumps(event)), event
        await producer.send_and_wait(topic, json.dumps(event).encode(), partition=partition,
                                     key=event["subject"].encode())
    return events


_AGREED: dict[str, str] = {}


async def valid_follow_up(services: Services, topic: str) -> dict[str, Any]:
    if topic == CONVERSATIONS:
        event = valid_event("ConversationLogged")
        event["data"] |= {"conversation_id": str(uuid4()), "participant_id": f"p_{uuid4().hex}"}
        return {**event, "source": "intake", "subject": event["data"]["conversation_id"]}
    if topic == PARTICIPANTS:
        event = valid_event("ParticipantErased")
        event["data"]["participant_id"] = f"p_{uuid4().hex}"
        return {**event, "source": "intake", "subject": event["data"]["participant_id"]}
    if topic == INSIGHTS:
        event = valid_event("InsightDrafted")
        event["data"]["insight_id"] = str(uuid4())
        return {**event, "subject": event["data"]["insight_id"]}
    if topic == PRIORITIES:
        event = valid_event("PriorityAgreed")
        event["data"]["priority_id"] = str(uuid4())
        return {**event, "subject": event["data"]["priority_id"]}
    assert topic == ACTIONS
    event = valid_event("ActionTaken")
    event["data"] |= {"action_id": str(uuid4()), "priority_ids": [await agreed_priority(services)]}
    return {**event, "source": "trust.hostile", "subject": event["data"]["action_id"]}


async def agreed_priority(services: Services) -> str:
    """A priority the priority service agreed (an action from a trust system must cite one)."""
    if "id" not in _AGREED:
        priority = services["priority"].running
        insights = await drafted_insights(priority, FakeSource(priority.endpoints), n=1)
        _AGREED["id"] = str((await agree_priority(priority, insights))["priority_id"])
    return _AGREED["id"]


async def inbox_outcome(services: Services, consumer: str, event_id: str) -> str | None:
    async with services[consumer].pool.acquire() as conn:
        found: str | None = await conn.fetchval(
            "SELECT outcome FROM inbox WHERE consumer = $1 AND event_id = $2",
            consumer, UUID(event_id))
        return found


async def until_applied(services: Services, consumer: str, events: list[dict[str, Any]],
                        timeout_s: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    pending = {e["id"] for e in events}
    while pending:
        pending = {i for i in pending
                   if await inbox_outcome(services, consumer, i) != "applied"}
        if pending and asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{consumer} is stuck: {len(pending)} valid messages produced "
                                 f"after the hostile ones were not applied in {timeout_s}s")
        await asyncio.sleep(0.1)


async def dead_letters(endpoints: StackEndpoints, consumer: str, keys: set[bytes],
                       timeout_s: float = 30) -> dict[bytes, Any]:
    """Records on the consumer's dead-letter topic (from the beginning) with these keys."""
    reader = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                              enable_auto_commit=False, fetch_max_wait_ms=10,
                              max_partition_fetch_bytes=8 * 1024 * 1024)
    await reader.start()
    found: dict[bytes, Any] = {}
    try:
        topic = dead_letter_topic(consumer)
        parts = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or {0}]
        reader.assign(parts)
        await reader.seek_to_beginning(*parts)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while set(found) < keys and asyncio.get_running_loop().time() < deadline:
            for records in (await reader.getmany(timeout_ms=200)).values():
                found.update({r.key: r for r in records if r.key in keys})
    finally:
        await reader.stop()
    return found


def event_id_of(message: Hostile) -> str | None:
    try:
        value = json.loads(message.value or b"")
        candidate = str(value["id"]) if isinstance(value, dict) else ""
        return str(UUID(candidate))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


@pytest.mark.parametrize("topic", [CONVERSATIONS, PARTICIPANTS, INSIGHTS, PRIORITIES, ACTIONS])
async def test_every_consumer_dead_letters_hostile_messages_and_applies_the_next_valid_one(
    services: Services, producer: AIOKafkaProducer, endpoints: StackEndpoints, topic: str
) -> None:
    hostile: list[Hostile] = []

    def make() -> None:
        hostile.extend(generate(topic))

    await in_thread(make)
    sent = await produce(producer, topic, hostile)
    valid = await follow_ups(services, producer, topic)

    for consumer in CONSUMERS[topic]:
        await until_applied(services, consumer, valid)
        refused = [m for m in sent if m.refused_by is None or consumer in m.refused_by]
        letters = await dead_letters(endpoints, consumer, {m.key for m in refused})
        missing = [m for m in refused if m.key not in letters]
        assert not missing, f"{consumer} did not dead-letter {len(missing)}: {missing[:3]}"
        for message in refused:
            letter = letters[message.key]
            headers = {k: v for k, v in letter.headers}
            reason = headers["dlq_reason"].decode()
            assert reason and MARK not in reason_unechoed(reason), (reason, message)
            assert headers["dlq_consumer"].decode() == consumer
            assert headers["dlq_original_topic"].decode() == topic
            if "dlq_value_omitted" in headers:  # too large to copy: its digest instead
                digest = hashlib.sha256(message.value or b"").hexdigest()
                assert headers["dlq_value_sha256"].decode() == digest
            else:
                assert (letter.value or b"") == (message.value or b""), "the bytes are kept"
            event_id = event_id_of(message)
            if event_id is not None:
                assert await inbox_outcome(services, consumer, event_id) != "applied", message
