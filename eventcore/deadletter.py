"""Dead letters: the original bytes and headers, plus why and where from, on `<consumer>.deadletter.v1`."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from contracts.topics import dead_letter_topic
from eventcore.messaging import OutgoingMessage, send_all

MAX_REASON_CHARS = 2000

log = logging.getLogger(__name__)


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
        try:
            await send_all(self._producer, [out])
        except MessageSizeTooLargeError:
            # Too big to copy (the dead-letter headers push it over the limit): sending it would
            # fail forever and stall the partition, so send the letter without the value; the
            # original stays on its topic at the partition and offset the headers name.
            log.warning("%s: dead letter of %s[%d]@%d sent without its value (%d bytes)",
                        self.consumer, message.topic, message.partition, message.offset,
                        len(message.value))
            omitted = [
                ("dlq_value_omitted", f"{len(message.value)} bytes, too large to copy".encode()),
                ("dlq_value_sha256", hashlib.sha256(message.value).hexdigest().encode()),
            ]
            await send_all(self._producer, [OutgoingMessage(
                self.topic, (message.key or b"")[:1024], b"", (*extra, *omitted))])
