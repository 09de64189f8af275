"""Wiring an idempotent consumer onto a FastStream Kafka broker."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from eventcore.consumer import IdempotentConsumer
from eventcore.deadletter import IncomingMessage
from eventcore.failpoints import hit
from eventcore.settings import CoreSettings


async def tolerant_parser(record: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream decodes every header as UTF-8, and a header that is not would fail the message
    before the consumer sees it, again and again (never dead-lettered). The consumer reads the
    raw record, so FastStream gets a copy whose headers decode; the raw record stays as sent."""
    try:
        for _, value in record.headers:
            value.decode()
    except UnicodeDecodeError:
        readable = [(k, v.decode("utf-8", "replace").encode()) for k, v in record.headers]
        parsed = await original(dataclasses.replace(record, headers=readable))
        parsed.raw_message = record
        return parsed
    return await original(record)


def subscribe(
    broker: KafkaBroker,
    consumer: IdempotentConsumer,
    topics: Sequence[str],
    settings: CoreSettings,
    *,
    group_id: str | None = None,
) -> Any:
    """Subscribe `consumer` to `topics` in its own consumer group (offsets committed after effects)."""

    subscriber = broker.subscriber(
        *topics,
        group_id=group_id or consumer.name,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{consumer.name}:{','.join(topics)}",
        parser=tolerant_parser,
    )

    @subscriber
    async def on_message(message: KafkaMessage) -> None:
        await consumer.process(IncomingMessage.from_record(message.raw_message))
        hit("consumer.before_offset_commit")

    return subscriber
