"""Intake over HTTP against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import GENESIS_HASH, body_digest, chain_hash, parse_event, verify_chain
from contracts.topics import CONVERSATIONS
from eventcore.embedded import StackEndpoints
from tests.integration.intake_fixtures import RunningIntake, running_intake

pytestmark = pytest.mark.integration

NAME, EMAIL, PHONE = "Zanele Okonkwo-Brightwater", "zanele.ob@example.org", "+44 7700 900456"
QUOTE = "I waited nine months and nobody from the Riverside clinic ever rang me back"


def request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "listener_id": "listener-1",
        "held_on": "2026-11-20",
        "setting": "community café",
        "place": "Tower Hamlets",
        "categories": ["clinical_and_social_help", "continuity_of_care"],
        "summary": "Waited months for a first appointment and heard nothing in between.",
        "quotes": [QUOTE],
        "support_shared": ["talking therapies"],
        "participant": {"contact": {"name": NAME, "email": EMAIL, "phone": PHONE}},
        "consent": {"to_store": True, "to_quote": True, "to_recontact": True,
                    "channel": "email", "earliest_contact_on": None},
        "equity": {"age_band": "25-34", "ethnicity": "Black African"},
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
async def intake(endpoints: StackEndpoints) -> AsyncIterator[RunningIntake]:
    async with running_intake(endpoints) as running:
        yield running


async def read_raw(endpoints: StackEndpoints, topic: str, event_ids: set[str],
                   timeout_s: float = 20) -> dict[str, bytes]:
    """Raw message bytes of the given event ids, read with a plain consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    found: dict[str, bytes] = {}
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while set(found) < event_ids and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    event_id = dict(r.headers).get("ce_id", b"").decode()
                    if event_id in event_ids:
                        found[event_id] = r.value
    finally:
        await consumer.stop()
    return found


async def test_logged_conversation_reaches_the_broker_complete_chained_and_sealed(
    intake: RunningIntake, endpoints: StackEndpoints
) -> None:
    answer = await intake.client.post("/conversations", json=request(),
                                      headers={"x-correlation-id": "corr-42"})
    assert answer.status_code == 201, answer.text
    accepted = answer.json()

    raw = (await read_raw(endpoints, CONVERSATIONS, {accepted["event_id"]}))[accepted["event_id"]]
    event = parse_event(raw)
    assert event.type == "ConversationLogged"
    assert str(event.id) == accepted["event_id"]
    assert event.sequence == accepted["sequence"]
    assert event.subject == accepted["id"] == str(event.data.conversation_id)
    assert event.source == "intake" and event.correlationid == "corr-42"
    assert event.actorid == "listener-1" and event.actorrole == "community_listener"
    assert event.data.participant_id == accepted["participant_id"]
    assert event.data.categories == ("clinical_and_social_help", "continuity_of_care")
    assert len(event.data.quotes) == 1 and event.data.quotes[0].alg == "AES-256-GCM"
    assert event.hash == chain_hash(event.prevhash, event.sequence, body_digest(event))
    if event.sequence == 1:
        assert event.prevhash == GENESIS_HASH
    for secret in (NAME, "Zanele", EMAIL, PHONE, "7700 900456", QUOTE, "Riverside clinic"):
        assert secret.encode() not in raw, f"{secret!r} travelled in clear"


async def test_the_store_chain_verifies_across_many_appends(intake: RunningIntake) -> None:
    for _ in range(5):
        assert (await intake.client.post("/conversations", json=request())).status_code == 201
    runtime = intake.runtime
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn:
        events = await runtime.store.read_after(conn, 0, 10_000)
    parsed = [parse_event(_dumps(e.envelope)) for e in events]
    assert [e.sequence for e in parsed] == list(range(1, len(parsed) + 1))
    assert verify_chain(parsed) is None


def _dumps(envelope: Any) -> bytes:
    import json
    return json.dumps(envelope).encode()
