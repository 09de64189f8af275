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


async def tolerant_parser(records: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream decodes every header as UTF-8, and a header that is not would fail the batch
    before the consumer sees it, again and again (never dead-lettered). The consumer reads the
    raw records, so FastStream then gets copies whose headers decode; the raw records stay as
    sent. (FastStream's own decoding is the check: checking every header first cost 1.7 % of
    insight's samples, docs/performance.md finding 75.)"""
    try:
        return await original(records)
    except UnicodeDecodeError:
        pass
    parsed = await original(tuple(map(_readable, records)))
    parsed.raw_message = records
    return parsed


async def raw_decoder(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """The consumer parses the raw bytes itself (contracts.parse_event); FastStream's own JSON
    decoding of every message would be thrown away, so it is not done."""
    return None


def _headers_decode(record: Any) -> bool:
    try:
        for _, value in record.headers:
            value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _readable(record: Any) -> Any:
    if _headers_decode(record):
        return record
    return dataclasses.replace(
        record, headers=[(k, v.decode("utf-8", "replace").encode()) for k, v in record.headers])


def subscribe(
    broker: KafkaBroker,
    consumer: IdempotentConsumer,
    topics: Sequence[str],
    settings: CoreSettings,
    *,
    group_id: str | None = None,
) -> Any:
    """Subscribe `consumer` to `topics` in its own consumer group: batches of up to
    `consumer_batch_max_records`, offsets committed once each batch's effects are."""

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
        decoder=raw_decoder,
        batch=True,
        max_records=settings.consumer_batch_max_records,
        batch_timeout_ms=settings.consumer_batch_wait_ms,
    )

    @subscriber
    async def on_batch(message: KafkaMessage) -> None:
        records = message.raw_message
        await consumer.process_batch([IncomingMessage.from_record(r) for r in records])
        hit("consumer.before_offset_commit")

    return subscriber
