"""Broker-side probes for the fault lab: poison messages, dead letters and consumer-group lag."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from contracts.topics import dead_letter_topic
from eventcore.messaging import envelope_message

POISON_HEADER = "x-fault-lab"


async def publish(bootstrap: str, topic: str, key: bytes, value: bytes,
                  headers: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await (await producer.send(topic, value, key=key, headers=headers))
    finally:
        await producer.stop()


def poison_from(template: dict[str, Any], topic: str) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """A message the contract accepts but insight cannot store: a category-list version beyond
    its `integer` column. Built from a real ConversationLogged envelope, so only the handler
    finds it wrong, every time (feedback keeps no such field, and applies it)."""
    envelope = json.loads(json.dumps(template))
    envelope["id"] = str(uuid4())
    envelope["subject"] = envelope["data"]["conversation_id"] = str(uuid4())
    envelope["data"]["categories_version"] = 2**31
    message = envelope_message(topic, envelope)
    headers = [*message.headers, (POISON_HEADER, b"poison")]
    return envelope["id"], message.key, message.value, headers


def garbage() -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """A message that is not an event at all."""
    ce_id = f"garbage-{uuid4()}"
    return ce_id, b"garbage", b'{"this is": "not an event"', [
        ("ce_id", ce_id.encode()), ("ce_type", b"ConversationLogged"), (POISON_HEADER, b"garbage")]


async def dead_letters(bootstrap: str, consumer: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on `<consumer>.deadletter.v1`, from the beginning."""
    topic = dead_letter_topic(consumer)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                              auto_offset_reset="earliest", fetch_max_wait_ms=10)
    await reader.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        found: list[ConsumerRecord[bytes, bytes]] = []
        while True:
            batches = await reader.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend(records)
            positions = {tp: await reader.position(tp) for tp in partitions}
            if not batches or all(positions[tp] >= ends[tp] for tp in partitions):
                return found
    finally:
        await reader.stop()


async def lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Messages on `topics` not yet committed by consumer group `group` (its offsets read
    without joining the group)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                              enable_auto_commit=False)
    await reader.start()
    try:
        await reader._client.force_metadata_update()  # a fresh partition list
        partitions = [TopicPartition(t, p) for t in topics
                      for p in sorted(reader.partitions_for_topic(t) or ())]
        ends = await reader.end_offsets(partitions)
        behind = 0
        for tp in partitions:
            committed = await reader.committed(tp)
            behind += max(ends[tp] - (committed or 0), 0)
        return behind
    finally:
        await reader.stop()


async def repeats(bootstrap: str, topics: list[str]) -> int:
    """Copies beyond the first of every event on `topics` (what inboxes had to absorb)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                              auto_offset_reset="earliest", fetch_max_wait_ms=10)
    await reader.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics
                      for p in sorted(reader.partitions_for_topic(t) or ())]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        copies: Counter[bytes] = Counter()
        while True:
            batches = await reader.getmany(timeout_ms=500)
            for records in batches.values():
                copies.update(dict(r.headers or ()).get("ce_id", b"") for r in records)
            if not batches or all([await reader.position(tp) >= ends[tp] for tp in partitions]):
                return sum(n - 1 for n in copies.values())
    finally:
        await reader.stop()


def headers_of(record: ConsumerRecord[bytes, bytes]) -> dict[str, bytes]:
    return dict(record.headers or ())
