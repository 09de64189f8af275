"""Helpers for the priority tests (no tests here): the service in-process over ASGI, fake
upstream sources that publish chained events onto the real topics, and broker readers."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import (
    GENESIS_HASH,
    ActionTaken,
    ActionTakenEvent,
    ActorRole,
    AnyEvent,
    Envelope,
    EventDraft,
    InsightDrafted,
    InsightDraftedEvent,
    body_digest,
    chain_hash,
    new_event,
    parse_event,
)
from contracts.topics import INSIGHTS
from eventcore.embedded import StackEndpoints
from eventcore.messaging import envelope_message
from services.priority.bootstrap import build_app
from services.priority.config import PrioritySettings
from tests.conftest import core_values, create_database
from tests.integration.in_process import RunningApp, serve


@dataclass
class RunningPriority(RunningApp):
    endpoints: StackEndpoints


@asynccontextmanager
async def running_priority(endpoints: StackEndpoints) -> AsyncIterator[RunningPriority]:
    values = core_values(endpoints, await create_database(endpoints))
    settings = PrioritySettings(**values)  # type: ignore[arg-type]
    app = build_app(settings)
    async with serve(app, "priority") as client:
        yield RunningPriority(app, client, endpoints)


@dataclass
class FakeSource:
    """An upstream system: numbers and chains its events like a real source, then publishes."""

    endpoints: StackEndpoints
    name: str = field(default_factory=lambda: f"test.{secrets.token_hex(4)}")
    sequence: int = 0
    head: str = GENESIS_HASH

    def seal(self, draft: EventDraft[Any]) -> Envelope[Any]:
        self.sequence += 1
        digest = chain_hash(self.head, self.sequence, body_digest(draft))
        event = draft.sequenced(self.sequence, self.head, digest)
        self.head = digest
        return event

    async def publish(self, topic: str, *events: Envelope[Any]) -> None:
        await produce(self.endpoints, topic, [
            (str(e.subject).encode(), envelope_message(topic, e.model_dump(mode="json")).value,
             [("ce_id", str(e.id).encode())]) for e in events])

    def insight(self, insight_id: UUID | None = None, revision: int = 1,
                cites: Sequence[UUID] | None = None) -> Envelope[Any]:
        data = InsightDrafted(insight_id=insight_id or uuid4(), revision=revision,
                              statement=f"Community groups feel easier to approach (r{revision}).",
                              category="community_support",
                              conversation_ids=tuple(cites or (uuid4(), uuid4())))
        return self.seal(new_event(
            InsightDraftedEvent, data=data, source=self.name, subjectversion=revision,
            actorid="partner_x", actorrole=ActorRole.LIVED_EXPERIENCE_PARTNER,
            correlationid=str(uuid4())))

    def action(self, priority_ids: Sequence[UUID | str], *, action_id: UUID | None = None,
               version: int = 1, status: str = "planned") -> Envelope[Any]:
        data = ActionTaken.model_validate({
            "action_id": action_id or uuid4(), "priority_ids": [str(p) for p in priority_ids],
            "description": "Peer support worker in every GP surgery.", "service": "peer support",
            "place": "Newham", "framework": "Community Mental Health Framework",
            "framework_area": "Access and engagement", "status": status})
        return self.seal(new_event(
            ActionTakenEvent, data=data, source=self.name, subjectversion=version,
            actorid="trust_system_1", actorrole=ActorRole.TRUST_SYSTEM,
            correlationid=str(uuid4())))


async def produce(endpoints: StackEndpoints, topic: str,
                  messages: Sequence[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers, acks="all",
                                enable_idempotence=endpoints.kafka_enable_idempotence)
    await producer.start()
    try:
        for key, value, headers in messages:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def read_topic(endpoints: StackEndpoints, topic: str, wanted: Callable[[Any], bool],
                     count: int = 1, timeout_s: float = 20) -> list[Any]:
    """Records of `topic` that `wanted` accepts, read from the beginning with a plain consumer."""
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    found: list[Any] = []
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                found += [r for r in records if wanted(r)]
    finally:
        await consumer.stop()
    return found


async def read_events(
    endpoints: StackEndpoints, topic: str, event_ids: set[str]
) -> dict[str, AnyEvent]:
    """The published events with these ids, parsed against the contract."""
    records = await read_topic(endpoints, topic,
                               lambda r: dict(r.headers).get("ce_id", b"").decode() in event_ids,
                               count=len(event_ids))
    return {dict(r.headers)["ce_id"].decode(): parse_event(r.value) for r in records}


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 20) -> Any:
    """Poll `check` until it returns something truthy; that value is returned."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)
    return found


async def drafted_insights(priority: RunningPriority, source: FakeSource, n: int = 2
                           ) -> list[Envelope[Any]]:
    """Publish `n` insights and wait until the priority service has them in its read model."""
    events = [source.insight() for _ in range(n)]
    await source.publish(INSIGHTS, *events)
    ids = {str(e.data.insight_id) for e in events}

    async def received() -> bool:
        answer = await priority.client.get("/insights", params={"limit": 500})
        return ids <= {i["insight_id"] for i in answer.json()}

    await eventually(received)
    return events


async def agree_priority(priority: RunningPriority, insights: Sequence[Envelope[Any]],
                         supporters: Sequence[str] = ("partner_a", "partner_b", "partner_c"),
                         headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a session to agreement over HTTP; returns the decision."""
    opened = await priority.client.post("/sessions", headers=headers, json={
        "opened_by": "partner_a", "insight_ids": [str(e.data.insight_id) for e in insights],
        "statement": "Offer mental health support through trusted community groups."})
    assert opened.status_code == 201, opened.text
    session_id = opened.json()["session_id"]
    for partner in supporters:
        answer = await priority.client.post(f"/sessions/{session_id}/responses",
                                            json={"partner_id": partner, "response": "support"})
        assert answer.status_code == 200, answer.text
    decided = await priority.client.post(f"/sessions/{session_id}/decision", headers=headers,
                                         json={"decided_by": "partner_a"})
    assert decided.status_code == 200 and decided.json()["outcome"] == "agreed", decided.text
    decision: dict[str, Any] = decided.json()
    return decision

