"""The relay rig (`python -m golden_thread.bench.relay_rig`) times a relay that publishes every
event it stored, on the real broker and database, and reports figures, not a pass or fail."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from eventcore.embedded import StackEndpoints
from golden_thread.bench.fixtures import Drafts
from golden_thread.bench.relay_rig import catch_up
from golden_thread.bench.store_append import DraftSupply

pytestmark = pytest.mark.integration

EVENTS = 1_200


async def test_the_rig_times_a_relay_that_publishes_all_it_stored(
        endpoints: StackEndpoints) -> None:
    drafts = DraftSupply(Drafts(), templates=16)
    drafts.prepare(EVENTS)
    done = await catch_up(endpoints, EVENTS, drafts, timeout_s=60)
    assert done.events == EVENTS and done.seconds > 0 and done.cpu_us_per_event > 0
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    seen: Counter[int] = Counter()
    # Read, not counted from the end offsets: right after the acknowledgements the embedded
    # broker's ListOffsets answered 1,187 and 1,195 for 1,200 records all there to be read.
    try:
        parts = [TopicPartition(done.topic, p)
                 for p in consumer.partitions_for_topic(done.topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        async with asyncio.timeout(30):
            while sum(seen.values()) < EVENTS:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    seen.update(int(dict(r.headers)["ce_sequence"]) for r in records)
    finally:
        await consumer.stop()
    assert len(parts) == 3
    assert seen == Counter(range(1, EVENTS + 1))  # each stored event, once
