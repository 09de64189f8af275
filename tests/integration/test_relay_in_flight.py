"""The relay sends its next batch while the last is acknowledged, and marks only what every
batch before it was acknowledged for: a held acknowledgement holds the cursor, a refused batch
is sent again from where it began."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from eventcore.embedded import StackEndpoints
from tests.integration.relay_kit import Rig, relay_rig
from tests.integration.relay_reader import read_published

pytestmark = pytest.mark.integration


class Recorded:
    """A record batch being filled, with the sequences of the messages it took."""

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.sequences: list[int] = []

    def append(self, *, timestamp: int | None, key: bytes, value: bytes,
               headers: Sequence[tuple[str, bytes]]) -> Any:
        metadata = self.builder.append(timestamp=timestamp, key=key, value=value, headers=headers)
        if metadata is not None:
            self.sequences.append(int(dict(headers)["ce_sequence"]))
        return metadata

    def close(self) -> None:
        self.builder.close()


class HeldAck:
    """The real producer, except that the first record batch holding sequence `sequence` has
    its acknowledgement held for `hold_s` (the broker has it), then passed on or, with `fail`,
    replaced by a timeout: the broker wrote it, the relay is told it did not."""

    def __init__(self, producer: AIOKafkaProducer, sequence: int, hold_s: float, *,
                 fail: bool = False) -> None:
        self._producer = producer
        self._sequence, self._hold_s, self._fail = sequence, hold_s, fail
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: list[int] = []
        self.sent_while_held: list[int] = []
        self._others: list[asyncio.Future[Any]] = []
        self.others_acknowledged_while_held = False
        self.released = asyncio.Event()

    async def partitions_for(self, topic: str) -> set[int]:
        partitions: set[int] = await self._producer.partitions_for(topic)
        return partitions

    def create_batch(self) -> Recorded:
        return Recorded(self._producer.create_batch())

    async def send_batch(self, batch: Recorded, topic: str, *,
                         partition: int) -> asyncio.Future[Any]:
        acked: asyncio.Future[Any] = await self._producer.send_batch(batch.builder, topic,
                                                                    partition=partition)
        self.sent.extend(batch.sequences)
        if self._sequence not in batch.sequences or self.released.is_set() or self._tasks:
            self._others.append(acked)
            return acked
        held: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def release() -> None:
            metadata = await acked
            await asyncio.sleep(self._hold_s)
            self.sent_while_held = list(self.sent)
            self.others_acknowledged_while_held = all(f.done() for f in self._others)
            self.released.set()
            if self._fail:
                held.set_exception(KafkaTimeoutError())
            else:
                held.set_result(metadata)

        task = asyncio.create_task(release())
        self._tasks.add(task)
        return held


async def stored_cursor(rig: Rig) -> int:
    async with rig.pool.acquire() as conn:
        value = await conn.fetchval(
            "SELECT published_sequence FROM outbox_cursor WHERE relay = $1", rig.relay.name)
    return int(value or 0)


async def cursors_until(rig: Rig, event: asyncio.Event, timeout_s: float = 10) -> list[int]:
    """The cursor, in memory and stored, sampled every 20 ms until `event` is set (a sample
    taken as it was set is dropped: it may have raced the relay's next write)."""
    seen: list[int] = []

    async def sample() -> None:
        while not event.is_set():
            taken = [rig.relay.published_sequence, await stored_cursor(rig)]
            if not event.is_set():
                seen.extend(taken)
            await asyncio.sleep(0.02)

    await asyncio.wait_for(sample(), timeout_s)
    return seen


@asynccontextmanager
async def held_rig(endpoints: StackEndpoints, *, max_in_flight: int, sequence: int,
                   hold_s: float, fail: bool = False) -> AsyncIterator[tuple[Rig, HeldAck]]:
    """A relay (two events per batch, `max_in_flight`) whose producer holds one ack."""
    held: list[HeldAck] = []

    def wrap(producer: AIOKafkaProducer) -> HeldAck:
        held.append(HeldAck(producer, sequence=sequence, hold_s=hold_s, fail=fail))
        return held[0]

    async with relay_rig(endpoints, poll_interval_s=0.05, batch_size=2,
                         max_in_flight=max_in_flight, wrap=wrap) as rig:
        yield rig, held[0]


async def test_the_next_batch_is_sent_while_the_last_is_acknowledged_and_marked_after_it(
        endpoints: StackEndpoints) -> None:
    async with held_rig(endpoints, max_in_flight=4, sequence=1, hold_s=0.8) as (rig, held):
        ids = await rig.append(*range(1, 7))  # batches [1, 2], [3, 4], [5, 6]
        rig.start()
        seen = await cursors_until(rig, held.released)
        assert held.sent_while_held == [1, 2, 3, 4, 5, 6], "all three went out at once"
        assert held.others_acknowledged_while_held, "[2] to [6] were acknowledged meanwhile"
        assert set(seen) == {0}, "[3, 4] and [5, 6] are acknowledged, but [1, 2] is not"
        assert await rig.published_up_to(6)
        assert await stored_cursor(rig) == 6
        published = await read_published(endpoints, ids, settle_s=0.3)
    assert [e.sequence for e in published] == [1, 2, 3, 4, 5, 6]  # once each, in order
    assert held.sent == [1, 2, 3, 4, 5, 6]


async def test_a_refused_batch_is_sent_again_and_nothing_after_it_is_marked_before(
        endpoints: StackEndpoints, caplog: pytest.LogCaptureFixture) -> None:
    async with held_rig(endpoints, max_in_flight=2, sequence=3, hold_s=0.8,
                        fail=True) as (rig, held):
        ids = await rig.append(*range(1, 7))
        rig.start()
        with caplog.at_level(logging.WARNING, logger="eventcore.relay"):
            seen = await cursors_until(rig, held.released)
            assert await rig.published_up_to(6)
        assert held.sent_while_held == [1, 2, 3, 4, 5, 6], "[5, 6] went out meanwhile"
        assert max(seen) == 2, "acknowledged after the refused batch, [5, 6] is not marked"
        assert await stored_cursor(rig) == 6
        assert "KafkaTimeoutError" in caplog.text
        published = await read_published(endpoints, ids, settle_s=0.3)
    sequences = [e.sequence for e in published]
    assert held.sent == [1, 2, 3, 4, 5, 6, 3, 4, 5, 6], "sent again from the refused batch"
    assert sorted(set(sequences)) == [1, 2, 3, 4, 5, 6]
    assert sequences[:6] == [1, 2, 3, 4, 5, 6]  # the broker had it all; then the repeats


async def test_one_batch_in_flight_waits_for_each_acknowledgement(
        endpoints: StackEndpoints) -> None:
    async with held_rig(endpoints, max_in_flight=1, sequence=1, hold_s=0.5) as (rig, held):
        await rig.append(*range(1, 5))
        rig.start()
        await held.released.wait()
        assert held.sent_while_held == [1, 2]
        assert await rig.published_up_to(4)
        assert held.sent == [1, 2, 3, 4]
