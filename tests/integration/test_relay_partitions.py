"""The relay hands each batch to the producer as one record batch per partition (finding 96):
every event lands in the partition Kafka's default partitioner gives its key, each partition's
events in sequence order, a batch that outgrows `max_batch_size` is split and still lands whole
and in order, and the broker check remembers each partition's true newest offset."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from uuid import UUID

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from eventcore.embedded import StackEndpoints
from tests.integration.relay_kit import relay_rig
from tests.integration.relay_reader import uuid_of
from tests.integration.store_kit import TOPICS, consent_draft, new_subject

pytestmark = pytest.mark.integration

TOPIC = TOPICS["ConsentChanged"]


async def _records(endpoints: StackEndpoints,
                   ids: set[UUID]) -> tuple[int, list[tuple[int, int, bytes, int]]]:
    """The topic's partition count, and (partition, offset, key, ce_sequence) of every record
    carrying one of `ids`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    found: list[tuple[int, int, bytes, int]] = []
    try:
        parts = [TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen: set[UUID] = set()
        async with asyncio.timeout(30):
            while seen != ids:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    for r in records:
                        headers = dict(r.headers or ())
                        event_id = uuid_of(headers.get("ce_id", b""))  # other tests' records too
                        if event_id in ids:
                            assert event_id is not None
                            seen.add(event_id)
                            assert r.key is not None
                            found.append((r.partition, r.offset, r.key,
                                          int(headers["ce_sequence"])))
    finally:
        await consumer.stop()
    return len(parts), found


@pytest.mark.parametrize("max_batch_bytes", [16_384, 1_024])  # 1 KiB: a message per batch
async def test_each_event_lands_where_the_default_partitioner_puts_its_key_in_order(
        endpoints: StackEndpoints, max_batch_bytes: int) -> None:
    async with relay_rig(endpoints, poll_interval_s=0.05, broker_check_interval_s=3600,
                         max_batch_bytes=max_batch_bytes) as rig:
        subjects = [new_subject() for _ in range(24)]
        async with rig.pool.acquire() as conn:
            for version in (1, 2, 3):  # interleaved: each relay batch spans every partition
                for subject in subjects:
                    await rig.store.append(conn, [consent_draft(subject, version)])
            stored = await rig.store.read_after(conn, 0, 100)
        rig.start()
        assert await rig.published_up_to(72)
        count, records = await _records(endpoints, {e.event_id for e in stored})
        acked = dict(rig.relay._watch._acked) if rig.relay._watch else {}

    partitions = sorted({p for p, *_ in records} | {tp.partition for tp in acked})
    assert len(records) == 72 and len(partitions) > 1
    per_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for partition, offset, key, sequence in sorted(records):
        expected = DefaultPartitioner()(key, list(range(count)), list(range(count)))
        assert partition == expected, f"{key!r} landed in {partition}, not {expected}"
        per_partition[partition].append((offset, sequence))
    for partition, landed in per_partition.items():
        sequences = [sequence for _, sequence in landed]
        assert sequences == sorted(sequences), f"partition {partition} out of order"
        # What the broker check remembers: the partition's newest offset and its event.
        assert acked[TopicPartition(TOPIC, partition)][0] == landed[-1][0]
    by_sequence = {e.sequence: e for e in stored}
    assert all(key == by_sequence[sequence].subject.encode() for *_, key, sequence in records)
