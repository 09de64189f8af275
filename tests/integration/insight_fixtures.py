"""Support for the insight integration tests (no tests here): the insight service in-process over
ASGI with its lifespan, a fake intake that publishes chained events, broker readers, polling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import (
    GENESIS_HASH,
    ActorRole,
    ConversationLogged,
    ConversationLoggedEvent,
    Envelope,
    ParticipantErased,
    ParticipantErasedEvent,
    body_digest,
    chain_hash,
    new_event,
)
from contracts.fields import example_of
from eventcore.embedded import StackEndpoints
from eventcore.messaging import envelope_message
from services.insight.bootstrap import build_app
from services.insight.config import InsightSettings
from tests.conftest import core_values, create_database
from tests.integration.in_process import RunningApp, serve

T = TypeVar("T")


@dataclass
class RunningInsight(RunningApp):
    settings: InsightSettings


@asynccontextmanager
async def running_insight(endpoints: StackEndpoints) -> AsyncIterator[RunningInsight]:
    settings = InsightSettings(**core_values(endpoints, await create_database(endpoints)))  # type: ignore[arg-type]
    app = build_app(settings)
    async with serve(app, "insight") as client:
        yield RunningInsight(app, client, settings)


async def eventually(check: Callable[[], Awaitable[T | None]], timeout_s: float = 30) -> T:
    """Poll `check` until it returns something other than None (or False)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await check()
        if found is not None and found is not False:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not seen within {timeout_s}s")
        await asyncio.sleep(0.05)


@dataclass
class FakeIntake:
    """Publishes intake-shaped events with a consistent chain of its own (sequence from 1)."""

    producer: AIOKafkaProducer
    source: str = "intake"
    sequence: int = 0
    prevhash: str = GENESIS_HASH
    sent: list[Envelope[Any]] = field(default_factory=list)

    def seal(self, draft: Any) -> Envelope[Any]:
        self.sequence += 1
        event: Envelope[Any] = draft.sequenced(
            self.sequence, self.prevhash, chain_hash(self.prevhash, self.sequence, body_digest(draft)))
        self.prevhash = event.hash
        return event

    def conversation(self, **overrides: Any) -> Envelope[Any]:
        data = ConversationLogged.model_validate(
            example_of(ConversationLogged)
            | {"conversation_id": uuid4(), "participant_id": "p_" + uuid4().hex[:12]} | overrides)
        return self.seal(new_event(
            ConversationLoggedEvent, data=data, source=self.source, subjectversion=1,
            actorid="listener_fake", actorrole=ActorRole.COMMUNITY_LISTENER,
            correlationid=str(uuid4())))

    def erasure(self, participant_id: str) -> Envelope[Any]:
        data = ParticipantErased(participant_id=participant_id, erased_on=date.today())
        return self.seal(new_event(
            ParticipantErasedEvent, data=data, source=self.source, subjectversion=2,
            actorid="listener_fake", actorrole=ActorRole.COMMUNITY_LISTENER,
            correlationid=str(uuid4()), time=datetime.now(UTC)))

    async def publish(self, topic: str, event: Envelope[Any], *, key: bytes | None = None) -> bytes:
        """Publish as the relay would (key: the subject, unless given); returns the bytes."""
        message = envelope_message(topic, event.model_dump(mode="json"))
        await self.send(topic, message.value, key=key or message.key, headers=list(message.headers))
        return message.value

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None,
                   partition: int | None = None, headers: list[tuple[str, bytes]] | None = None
                   ) -> None:
        await (await self.producer.send(topic, value, key=key, partition=partition,
                                        headers=headers or []))


@asynccontextmanager
async def fake_intake(endpoints: StackEndpoints) -> AsyncIterator[FakeIntake]:
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_idempotence=endpoints.kafka_enable_idempotence)
    await producer.start()
    try:
        yield FakeIntake(producer)
    finally:
        await producer.stop()


async def read_topic(endpoints: StackEndpoints, topic: str,
                     wanted: Callable[[Any], bool], count: int = 1, timeout_s: float = 30
                     ) -> list[Any]:
    """Records of `topic` (from the beginning) that `wanted` accepts, once `count` are found."""
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
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(r for r in records if wanted(r))
    finally:
        await consumer.stop()
    return found


def header(record: Any, name: str) -> str:
    value: bytes = dict(record.headers).get(name, b"")
    return value.decode()
