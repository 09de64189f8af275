"""A relay batch handed to the producer as one record batch per partition.

aiokafka's `send` per message costs ≈ 24 µs of the relay's CPU each on this machine: a coroutine,
two futures, the pure-Python `murmur2` of the key (≈ 6 µs) and the accumulator's bookkeeping
(docs/performance.md, finding 96). Here a batch's messages are grouped by partition, written
into aiokafka's own record-batch builders (`create_batch`, its C builder), closed (so no other
`send` to that partition can add a record to them, and the producer sends them without waiting
out `linger_ms`, there being nothing more to gather) and handed over with `send_batch`: one
future per partition batch, whose acknowledgement carries the base offset. A message larger
than the producer's `max_request_size` is refused before anything is sent, as `send` refuses it.

Partitions are chosen as Kafka's default partitioner chooses them (Java's and aiokafka's
`DefaultPartitioner`: murmur2 of the key, sign bit cleared, modulo the topic's partition count,
among all its partitions sorted by id), so a subject's events land where any other producer of
the same key would put them. Every relay message has a key (the subject).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import RecordMetadata

from eventcore.messaging import OutgoingMessage

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, Any] = {}  # key length -> its words' unpacker


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data` (unsigned 32-bit), the same value as `aiokafka.partitioner.
    murmur2`, with the key's 4-byte words unpacked at once (36-byte key: 8.3 -> 4.0 µs here)."""
    length = len(data)
    words = _WORDS.get(length)
    if words is None:
        words = _WORDS[length] = struct.Struct(f"<{length >> 2}I").unpack_from
    h = (0x9747B28C ^ length) & _MASK
    for k in words(data):
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ (((k ^ (k >> 24)) * _M) & _MASK)
    whole, tail = length & ~3, length & 3
    if tail:
        if tail >= 3:
            h ^= data[whole + 2] << 16
        if tail >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """The partition Kafka's default partitioner gives `key` among `partitions` (sorted)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


@dataclass(slots=True)
class PartitionBatch:
    """Messages for one partition, in the order they were given, and their record batch."""

    topic: str
    partition: int
    builder: Any  # aiokafka's BatchBuilder
    messages: list[OutgoingMessage] = field(default_factory=list)

    def newest(self, ack: RecordMetadata) -> RecordMetadata:
        """The acknowledgement of this batch's last message (the broker acknowledges a record
        batch with its base offset; the records follow it in order)."""
        return ack._replace(offset=ack.offset + len(self.messages) - 1)


async def partition_batches(
    producer: AIOKafkaProducer, messages: Sequence[OutgoingMessage]
) -> list[PartitionBatch]:
    """`messages` written into closed record batches, one per partition unless a batch fills up
    (`max_batch_size`: then the next one for that partition follows it). Each partition's
    messages keep their order; batches are listed in the order they must be handed over."""
    # aiokafka keeps the limit private; its default is 1 MiB (Kafka's max.request.size).
    limit: int = getattr(producer, "_max_request_size", 1_048_576)
    partitions: dict[str, list[int]] = {}
    open_: dict[tuple[str, int], PartitionBatch] = {}
    out: list[PartitionBatch] = []
    for message in messages:
        headers = list(message.headers)
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(message.key, message.value,
                                                                headers)
        if size > limit:
            raise MessageSizeTooLargeError(
                f"a message of {size} bytes is larger than the producer's max_request_size")
        topic = message.topic
        known = partitions.get(topic)
        if known is None:  # waits for the topic's metadata, as `send` does
            known = partitions[topic] = sorted(await producer.partitions_for(topic))
        partition = partition_of(message.key, known)
        batch = open_.get((topic, partition))
        if batch is None or not _append(batch, message, headers):
            if batch is not None:
                batch.builder.close()
            batch = open_[(topic, partition)] = PartitionBatch(
                topic, partition, producer.create_batch())
            out.append(batch)
            appended = _append(batch, message, headers)
            assert appended, "an empty record batch takes any one message"
    for batch in out:
        batch.builder.close()
    return out


def _append(batch: PartitionBatch, message: OutgoingMessage,
            headers: list[tuple[str, bytes]]) -> bool:
    if batch.builder.append(timestamp=None, key=message.key, value=message.value,
                            headers=headers) is None:
        return False  # full
    batch.messages.append(message)
    return True


def each_message(batches: Sequence[PartitionBatch]) -> Iterator[OutgoingMessage]:
    for batch in batches:
        yield from batch.messages
