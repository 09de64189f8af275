"""The relay's partitioning is Kafka's default partitioner's: murmur2 as aiokafka (and Java's
client) computes it, the sign bit cleared, modulo the partition count."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from aiokafka.structs import RecordMetadata
from hypothesis import given
from hypothesis import strategies as st

from eventcore.messaging import OutgoingMessage
from eventcore.produce import PartitionBatch, murmur2, partition_of


@given(st.binary(max_size=200))
def test_murmur2_is_aiokafka_s(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_murmur2_of_every_length_up_to_a_subject_s() -> None:
    for length in range(64):
        key = bytes(range(256 - length, 256))[:length]
        assert murmur2(key) == aiokafka_murmur2(key), length


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=64))
def test_a_key_s_partition_is_the_default_partitioner_s(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_partition_batch_s_newest_offset_follows_its_base() -> None:
    messages = [OutgoingMessage("t", b"k", b"v%d" % n) for n in range(3)]
    batch = PartitionBatch("t", 2, None, messages)
    base = RecordMetadata("t", 2, None, 40, 0, -1, 0)
    assert batch.newest(base) == base._replace(offset=42)
