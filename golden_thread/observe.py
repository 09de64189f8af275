"""Read public topics from the beginning without a consumer group (no offsets disturbed)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.registry import AnyEvent, parse_event


async def read_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    *,
    until: Callable[[Counter[str]], bool],
    timeout_s: float = 60.0,
    fetch_max_wait_ms: int = 10,
) -> list[AnyEvent]:
    """Events from `topics` in arrival order until `until(counts by type)` holds or time runs out."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
        fetch_max_wait_ms=fetch_max_wait_ms, auto_offset_reset="earliest",
    )
    await consumer.start()
    events: list[AnyEvent] = []
    counts: Counter[str] = Counter()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(await _partitions(consumer, t))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not until(counts) and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    event = parse_event(record.value)
                    events.append(event)
                    counts[event.type] += 1
    finally:
        await consumer.stop()
    return events


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic}: no partitions found")
