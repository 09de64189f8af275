"""The relay's partitioning is Kafka's default partitioner's: murmur2 as aiokafka (and Java's
client) computes it, the sign bit cleared, modulo the partition count."""

from __future__ import annotations

import asyncio
import gc

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from aiokafka.structs import RecordMetadata
from hypothesis import given
from hypothesis import strategies as st

from eventcore.inflight import InFlight
from eventcore.messaging import OutgoingMessage
from eventcore.produce import PartitionBatch, each_message, murmur2, partition_batches, partition_of


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


class Builder:
    """A record batch that takes `room` messages, then refuses (full)."""

    def __init__(self, room: int) -> None:
        self.room, self.closed = room, False
        self.values: list[bytes] = []

    def append(self, *, timestamp: int | None, key: bytes, value: bytes,
               headers: list[tuple[str, bytes]]) -> object:
        if self.closed or len(self.values) >= self.room:
            return None
        self.values.append(value)
        return object()

    def close(self) -> None:
        self.closed = True


class Producer:
    """What `partition_batches` and `InFlight.send` use of aiokafka's producer; `fail_at`: the
    send_batch call (0-based) that raises."""

    def __init__(self, room: int = 2, partitions: int = 3, fail_at: int | None = None) -> None:
        self.room, self.partitions, self.fail_at = room, partitions, fail_at
        self.handed: list[tuple[str, int, list[bytes]]] = []
        self.futures: list[asyncio.Future[RecordMetadata]] = []
        self._max_request_size = 4_096

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> Builder:
        return Builder(self.room)

    async def send_batch(self, builder: Builder, topic: str, *,
                         partition: int) -> asyncio.Future[RecordMetadata]:
        assert builder.closed, "handed over closed: nothing else can join it"
        if len(self.handed) == self.fail_at:
            raise KafkaTimeoutError()
        self.handed.append((topic, partition, builder.values))
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


def _messages(keys: list[bytes], topic: str = "t") -> list[OutgoingMessage]:
    return [OutgoingMessage(topic, key, b"%d" % n, (("ce_id", b"e%d" % n),))
            for n, key in enumerate(keys)]


async def test_a_batch_is_grouped_by_partition_split_when_full_and_kept_in_order() -> None:
    keys = [b"subject-%d" % (n % 5) for n in range(23)]
    messages = _messages(keys)
    producer = Producer(room=2)
    batches = await partition_batches(producer, messages)
    assert [m for m in each_message(batches)] != messages  # grouped, not as given
    assert sorted(each_message(batches), key=messages.index) == messages  # each one once
    for batch in batches:
        assert 1 <= len(batch.messages) <= 2 and batch.builder.closed
        assert {partition_of(m.key, [0, 1, 2]) for m in batch.messages} == {batch.partition}
    for partition in range(3):  # within a partition, the order given
        mine = [m for b in batches if b.partition == partition for m in b.messages]
        assert mine == [m for m in messages if partition_of(m.key, [0, 1, 2]) == partition]


async def test_a_message_larger_than_a_request_is_refused_before_anything_is_sent() -> None:
    producer = Producer()
    big = OutgoingMessage("t", b"k", b"x" * 5_000)
    with pytest.raises(MessageSizeTooLargeError):
        await InFlight(1).send(producer, 1, [*_messages([b"a"]), big])
    assert producer.handed == []


async def test_a_batch_half_handed_over_is_not_tracked_and_its_outcomes_are_read() -> None:
    producer = Producer(room=1, fail_at=2)
    in_flight = InFlight(2)
    with pytest.raises(KafkaTimeoutError):
        await in_flight.send(producer, 9, _messages([b"a", b"b", b"c", b"d"]))
    assert len(producer.handed) == 2 and len(in_flight) == 0  # the next leader re-sends it all
    loop = asyncio.get_running_loop()
    handlers: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: handlers.append(context))
    for future in producer.futures:
        future.set_exception(KafkaTimeoutError())
    del future
    producer.futures.clear()  # no one holds them now: freed, they say whether anyone read them
    await asyncio.sleep(0)
    gc.collect()
    assert handlers == [], "a failure no one waits for is read, not logged as never retrieved"
