"""The bench's raw latency probe fills its topic batch for batch as the system's topic is
(Tansu's fetches slow with a topic's record batches, not only its messages): the shape read
back from a topic is the shape written, a mirrored topic reads back the same, and it is gone
once the probe is done, whatever happened."""

from __future__ import annotations

import secrets

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from eventcore.embedded import StackEndpoints
from eventcore.embedded.topics import existing_topics
from golden_thread.bench import raw_kafka
from golden_thread.bench.infra import new_topics

pytestmark = pytest.mark.integration


async def fill(endpoints: StackEndpoints, topic: str, shape: dict[int, list[int]]) -> None:
    # Kafka's 16 KiB batches, each sent at once: a batch of 40 × 1 kB is split.
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                linger_ms=0, enable_idempotence=False)
    await producer.start()
    try:
        for partition, sizes in shape.items():
            await raw_kafka.fill_batches(producer, TopicPartition(topic, partition), b"x" * 1000,
                                         sizes)
    finally:
        await producer.stop()


async def test_a_mirrored_topic_reads_back_batch_for_batch_and_is_deleted_after(
        endpoints: StackEndpoints) -> None:
    first = f"bench.shape.{secrets.token_hex(3)}"
    await new_topics(endpoints, [first], partitions=4)
    await fill(endpoints, first, {0: [3, 1, 7, 2], 1: [1] * 20, 2: [40, 5], 3: [2]})

    written = await raw_kafka.record_batches(endpoints, first)
    assert written[0] == [3, 1, 7, 2] and written[1] == [1] * 20 and written[3] == [2]
    assert sum(written[2]) == 45 and len(written[2]) > 2, "a batch over 16 KiB is split"

    async with raw_kafka.mirrored_topic(endpoints, 1000, written) as copy:
        assert await raw_kafka.record_batches(endpoints, copy) == written
    assert copy not in await existing_topics(endpoints.kafka_bootstrap_servers)


async def test_a_mirrored_topic_is_deleted_when_the_probe_fails(
        endpoints: StackEndpoints) -> None:
    with pytest.raises(RuntimeError, match="the probe failed"):
        async with raw_kafka.mirrored_topic(endpoints, 100, {0: [1], 1: [2], 2: []}) as topic:
            raise RuntimeError("the probe failed")
    assert topic not in await existing_topics(endpoints.kafka_bootstrap_servers)


async def test_an_empty_topic_has_no_batches_and_a_missing_one_is_an_error(
        endpoints: StackEndpoints) -> None:
    topic = f"bench.shape.{secrets.token_hex(3)}"
    await new_topics(endpoints, [topic])
    assert await raw_kafka.record_batches(endpoints, topic) == {0: [], 1: [], 2: []}
    with pytest.raises(RuntimeError, match="no partitions"):
        await raw_kafka.record_batches(endpoints, f"bench.missing.{secrets.token_hex(3)}")
