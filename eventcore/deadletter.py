"""Dead letters: the original bytes and headers, plus why and where from, on `<consumer>.deadletter.v1`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.topics import dead_letter_topic
from eventcore.messaging import OutgoingMessage, send_all

MAX_REASON_CHARS = 2000


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)

    @classmethod
    def from_record(cls, record: Any) -> IncomingMessage:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value or b"",
            headers=tuple(record.headers or ()),
        )


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, consumer_name: str) -> None:
        self._producer = producer
        self.consumer = consumer_name
        self.topic = dead_letter_topic(consumer_name)

    async def send(self, message: IncomingMessage, *, reason: str, attempts: int) -> None:
        extra = [
            ("dlq_reason", reason[:MAX_REASON_CHARS].encode("utf-8")),
            ("dlq_consumer", self.consumer.encode()),
            ("dlq_original_topic", message.topic.encode()),
            ("dlq_original_partition", str(message.partition).encode()),
            ("dlq_original_offset", str(message.offset).encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        out = OutgoingMessage(
            self.topic, message.key or b"", message.value, (*message.headers, *extra)
        )
        await send_all(self._producer, [out])
