"""The bench's raw latency probe fills its topic batch for batch as the system's topic is
(Tansu's fetches slow with a topic's record batches, not only its messages): the shape read
back from a topic is the shape written, and a topic filled from it reads back the same."""

from __future__ import annotations

import secrets

import pytest
from aiokafka import TopicPartition

from eventcore.embedded import StackEndpoints
from golden_thread.bench import raw_kafka
from golden_thread.bench.infra import new_topics

pytestmark = pytest.mark.integration


async def fill(endpoints: StackEndpoints, topic: str, shape: dict[int, list[int]]) -> None:
    producer = raw_kafka.producer(endpoints, linger_ms=0)
    await producer.start()
    try:
        for partition, sizes in shape.items():
            await raw_kafka.fill_batches(producer, TopicPartition(topic, partition), b"x" * 1000,
                                         sizes)
    finally:
        await producer.stop()


async def test_a_topic_filled_from_a_shape_reads_back_batch_for_batch(
        endpoints: StackEndpoints) -> None:
    first, copy = (f"bench.shape.{secrets.token_hex(3)}" for _ in range(2))
    await new_topics(endpoints, [first, copy])
    shape = {0: [3, 1, 7, 2], 1: [1] * 20, 2: [40, 5]}  # 40 × 1 kB: split at 16 KiB
    await fill(endpoints, first, shape)

    written = await raw_kafka.record_batches(endpoints, first)
    assert written[0] == [3, 1, 7, 2] and written[1] == [1] * 20
    assert sum(written[2]) == 45 and len(written[2]) > 2, "a batch over 16 KiB is split"

    await fill(endpoints, copy, written)
    assert await raw_kafka.record_batches(endpoints, copy) == written


async def test_an_empty_topic_has_no_batches(endpoints: StackEndpoints) -> None:
    topic = f"bench.shape.{secrets.token_hex(3)}"
    await new_topics(endpoints, [topic])
    assert await raw_kafka.record_batches(endpoints, topic) == {0: [], 1: [], 2: []}
