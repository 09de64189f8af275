"""Read back what a relay published, by event id, with a plain consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from contracts import AnyEvent, parse_event
from eventcore.embedded import StackEndpoints
from tests.integration.store_kit import TOPICS


async def read_published(
    endpoints: StackEndpoints, event_ids: set[UUID], *, settle_s: float = 1.0, timeout_s: float = 30,
    topics: tuple[str, ...] | None = None,
) -> list[AnyEvent]:
    """Every copy of the given events on the relay's topics (duplicates included), in offset order
    per partition. Keeps reading `settle_s` after the last expected id arrives, to catch repeats."""
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    found: list[AnyEvent] = []
    try:
        names = sorted(set(topics or TOPICS.values()))
        parts = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        loop = asyncio.get_running_loop()
        deadline, settled_at = loop.time() + timeout_s, None
        while loop.time() < deadline and (settled_at is None or loop.time() < settled_at):
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for r in records:
                    event_id = dict(r.headers or ()).get("ce_id")
                    if event_id is not None and uuid_of(event_id) in event_ids:
                        found.append(parse_event(r.value))
            if settled_at is None and {e.id for e in found} >= event_ids:
                settled_at = loop.time() + settle_s
    finally:
        await consumer.stop()
    return found


def uuid_of(raw: bytes) -> UUID | None:
    try:
        return UUID(raw.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


async def read_records(
    endpoints: StackEndpoints, topic: str, count: int,
    keep: Callable[[ConsumerRecord[bytes, bytes]], bool] = lambda _: True, *,
    timeout_s: float = 30,
) -> tuple[int, list[ConsumerRecord[bytes, bytes]]]:
    """The topic's partition count, and its first `count` records that `keep` keeps (others,
    such as other tests' on a shared topic, are skipped), read from the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        async with asyncio.timeout(timeout_s):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    found.extend(r for r in records if keep(r))
    finally:
        await consumer.stop()
    return len(parts), found
