"""Wiring an idempotent consumer onto a FastStream Kafka broker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from eventcore.consumer import IdempotentConsumer
from eventcore.deadletter import IncomingMessage
from eventcore.settings import CoreSettings


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
    )

    @subscriber
    async def on_message(message: KafkaMessage) -> None:
        await consumer.process(IncomingMessage.from_record(message.raw_message))

    return subscriber
