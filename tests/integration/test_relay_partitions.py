"""The relay hands each batch to the producer as one record batch per partition (finding 96):
every event lands in the partition Kafka's default partitioner gives its key, each partition's
events in sequence order, a batch that outgrows `max_batch_size` is split and still lands whole
and in order, and the broker check remembers each partition's true newest offset."""

from __future__ import annotations

from collections import defaultdict

import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from eventcore.embedded import StackEndpoints
from tests.integration.relay_kit import relay_rig
from tests.integration.relay_reader import read_records, uuid_of
from tests.integration.store_kit import TOPICS, consent_draft, new_subject

pytestmark = pytest.mark.integration

TOPIC = TOPICS["ConsentChanged"]


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
        ids = {e.event_id for e in stored}
        count, read = await read_records(  # the topic is shared: other tests' records skipped
            endpoints, TOPIC, len(ids), lambda r: uuid_of(dict(r.headers).get("ce_id", b"")) in ids)
        assert {uuid_of(dict(r.headers)["ce_id"]) for r in read} == ids  # each one, once
        records = [(r.partition, r.offset, r.key or b"", int(dict(r.headers)["ce_sequence"]))
                   for r in read]
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
