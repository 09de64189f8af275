"""The idempotent consumer on a real broker and PostgreSQL: redelivery, dead letters, poison."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import GENESIS_HASH, body_digest, chain_hash, dead_letter_topic
from eventcore.consumer import DomainRejection
from eventcore.db import migrate
from eventcore.deadletter import IncomingMessage
from eventcore.embedded import StackEndpoints, create_topics
from eventcore.runtime import ServiceRuntime, Subscription
from eventcore.settings import CoreSettings
from tests.conftest import core_values, create_database
from tests.integration.store_kit import consent_draft, new_subject

pytestmark = pytest.mark.integration
TOPIC, CONSUMER = "coretest.events.v1", "coretest"


async def record_effect(conn: asyncpg.Connection, event: Any) -> None:
    if event.subjectversion == 13:
        raise DomainRejection("version 13 is refused by this test rule")
    if event.subjectversion == 66:
        raise RuntimeError("a handler bug")
    await conn.execute("INSERT INTO effects (event_id) VALUES ($1)", event.id)


@pytest.fixture(scope="module")
async def consumer(endpoints: StackEndpoints) -> AsyncIterator[ServiceRuntime]:
    await create_topics(endpoints.kafka_bootstrap_servers, [TOPIC, dead_letter_topic(CONSUMER)],
                        partitions=1)
    database_url = await create_database(endpoints)
    await migrate(database_url, "coretest", [], source="priority")
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TABLE coretest.effects (event_id uuid NOT NULL)")
    await conn.close()
    settings = CoreSettings(**core_values(endpoints, database_url))  # type: ignore[arg-type]
    runtime = ServiceRuntime(
        source="priority", schema="coretest", settings=settings, migrations=[], topics={},
        subscriptions=[Subscription(CONSUMER, [TOPIC], {"ConsentChanged": record_effect})],
    )
    await runtime.start(relay=False)
    try:
        yield runtime
    finally:
        await runtime.stop()


def sequenced(version: int, subject: str | None = None) -> bytes:
    draft = consent_draft(subject or new_subject(), version)
    event = draft.sequenced(1, GENESIS_HASH, chain_hash(GENESIS_HASH, 1, body_digest(draft)))
    return event.model_dump_json().encode()


async def produce(endpoints: StackEndpoints, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(TOPIC, value, key=b"k", headers=[("origin", b"test")])
    finally:
        await producer.stop()


async def effects(runtime: ServiceRuntime, event_id: str) -> int:
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", event_id))


async def eventually(check: Any, timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def dead_letters(endpoints: StackEndpoints, marker: bytes, timeout_s: float = 20) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    found: list[Any] = []
    try:
        tp = TopicPartition(dead_letter_topic(CONSUMER), 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not found and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                found += [r for r in records if marker in r.value]
    finally:
        await consumer.stop()
    return found


async def test_redelivering_the_same_event_has_no_second_effect(
    consumer: ServiceRuntime, endpoints: StackEndpoints
) -> None:
    value = sequenced(1)
    event_id = json.loads(value)["id"]
    await produce(endpoints, value, value, value)
    await eventually(lambda: _at_least(consumer, event_id, 1))
    later = sequenced(2)
    await produce(endpoints, later)  # once this is applied, the repeats before it were seen
    await eventually(lambda: _at_least(consumer, json.loads(later)["id"], 1))
    assert await effects(consumer, event_id) == 1


async def _at_least(runtime: ServiceRuntime, event_id: str, n: int) -> bool:
    return await effects(runtime, event_id) >= n


@pytest.mark.parametrize(("bad", "reason"), [
    (b'{"type": "ConsentChanged", "id": ', "body: not valid JSON"),
    (b'{"type": "Gossip", "marker": "MARK"}', "type"),
])
async def test_a_malformed_message_is_dead_lettered_with_its_reason_and_consuming_goes_on(
    consumer: ServiceRuntime, endpoints: StackEndpoints, bad: bytes, reason: str
) -> None:
    marker = secrets.token_hex(6).encode()
    bad = bad.replace(b"MARK", marker) if b"MARK" in bad else bad + marker
    good = sequenced(1)
    await produce(endpoints, bad, good)
    await eventually(lambda: _at_least(consumer, json.loads(good)["id"], 1))
    [letter] = await dead_letters(endpoints, marker)
    headers = dict(letter.headers)
    assert letter.value == bad
    assert reason in headers["dlq_reason"].decode()
    assert headers["dlq_original_topic"] == TOPIC.encode() and headers["origin"] == b"test"


async def test_a_domain_rejection_and_a_poison_message_are_dead_lettered_after_bounded_tries(
    consumer: ServiceRuntime, endpoints: StackEndpoints
) -> None:
    subject = new_subject()
    rejected, poison, good = sequenced(13, subject), sequenced(66, subject), sequenced(1)
    await produce(endpoints, rejected, poison, good)
    await eventually(lambda: _at_least(consumer, json.loads(good)["id"], 1))
    [first] = await dead_letters(endpoints, json.loads(rejected)["id"].encode())
    assert b"refused by this test rule" in dict(first.headers)["dlq_reason"]
    [second] = await dead_letters(endpoints, json.loads(poison)["id"].encode())
    headers = dict(second.headers)
    assert b"RuntimeError" in headers["dlq_reason"] and headers["dlq_attempts"] == b"3"
    for value in (rejected, poison):
        assert await effects(consumer, json.loads(value)["id"]) == 0


def incoming(value: bytes, offset: int) -> IncomingMessage:
    return IncomingMessage(TOPIC, 0, offset, b"k", value, (("ce_type", b"ConsentChanged"),))


async def inbox_rows(runtime: ServiceRuntime, ids: list[str]) -> list[asyncpg.Record]:
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn:
        return list(await conn.fetch(
            "SELECT event_id::text, outcome, processed_at, traceparent, event_type, source,"
            " sequence FROM inbox"
            " WHERE consumer = $1 AND event_id = ANY($2::uuid[])", CONSUMER, ids))


async def test_a_batch_is_applied_in_one_transaction_and_repeats_in_it_count_once(
    consumer: ServiceRuntime,
) -> None:
    values = [sequenced(1) for _ in range(40)]
    ids = [json.loads(v)["id"] for v in values]
    batch = [incoming(v, n) for n, v in enumerate(values + values[:5])]
    outcomes = await consumer.consumers[0].process_batch(batch)
    assert [o.status for o in outcomes] == ["applied"] * 40 + ["duplicate"] * 5
    rows = await inbox_rows(consumer, ids)
    assert len(rows) == 40 and len({r["processed_at"] for r in rows}) == 1  # one transaction
    assert all(r["traceparent"] for r in rows)
    sent = {e["id"]: e for e in map(json.loads, values)}  # every column from its own event
    assert {r["event_id"]: (r["event_type"], r["source"], r["sequence"]) for r in rows} == {
        i: (e["type"], e["source"], e["sequence"]) for i, e in sent.items()}
    for event_id in ids:
        assert await effects(consumer, event_id) == 1
    again = await consumer.consumers[0].process_batch(batch[:10])
    assert {o.status for o in again} == {"duplicate"}


async def test_one_bad_message_in_a_batch_is_dead_lettered_and_the_rest_applied(
    consumer: ServiceRuntime, endpoints: StackEndpoints,
) -> None:
    subject = new_subject()
    good = [sequenced(1) for _ in range(6)]
    rejected, marker = sequenced(13, subject), secrets.token_hex(6).encode()
    malformed = b'{"type": "ConsentChanged", "id": ' + marker
    batch = [incoming(v, n) for n, v in enumerate(good[:3] + [rejected, malformed] + good[3:])]
    outcomes = await consumer.consumers[0].process_batch(batch)
    assert [o.status for o in outcomes] == (["applied"] * 3 + ["dead_lettered"] * 2
                                            + ["applied"] * 3)
    assert "refused by this test rule" in (outcomes[3].reason or "")
    for value in good:
        assert await effects(consumer, json.loads(value)["id"]) == 1
    assert await effects(consumer, json.loads(rejected)["id"]) == 0
    [row] = await inbox_rows(consumer, [json.loads(rejected)["id"]])
    assert row["outcome"] == "dead_lettered"
    assert len(await dead_letters(endpoints, marker)) == 1


async def test_a_backlog_produced_at_once_is_applied_exactly_once(
    consumer: ServiceRuntime, endpoints: StackEndpoints,
) -> None:
    values = [sequenced(1) for _ in range(300)]
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(TOPIC, v, key=b"k") for v in values + values[:50]]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    ids = [json.loads(v)["id"] for v in values]

    async def all_in() -> bool:
        return len(await inbox_rows(consumer, ids)) == len(ids)
    await eventually(all_in)
    rows = await inbox_rows(consumer, ids)
    assert {r["outcome"] for r in rows} == {"applied"}
    assert len({r["processed_at"] for r in rows}) < len(ids)  # batched, not one per message
    found = await all_effects(consumer, ids)
    assert len(found) == len(set(found)) == len(ids)


async def all_effects(runtime: ServiceRuntime, ids: list[str]) -> list[str]:
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn:
        return [r[0] for r in await conn.fetch(
            "SELECT event_id::text FROM effects WHERE event_id = ANY($1::uuid[])", ids)]

