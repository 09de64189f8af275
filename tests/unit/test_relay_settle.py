"""How the relay marks what it sent: only a run of acknowledged batches from the oldest, and
never past a refused one (hand-made acknowledgements, a connection that records its writes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from eventcore.relay import OutboxRelay
from eventcore.store import EventStore


class Writes:
    def __init__(self) -> None:
        self.statements: list[str] = []

    async def execute(self, statement: str) -> None:
        self.statements.append(statement)

    def marked(self) -> list[int]:
        return [int(s.rsplit("< ", 1)[1]) for s in self.statements]


def relay_with(*batches: tuple[int, str]) -> tuple[OutboxRelay, list[asyncio.Future[Any]]]:
    """A relay with batches in flight, oldest first: (last sequence, 'done' | 'pending' |
    'failed' | 'cancelled')."""
    relay = OutboxRelay(database_url="", pool=None, store=EventStore("intake"),
                        producer=None, topics={}, name="intake-relay")
    futures = []
    for last, state in batches:
        acked: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if state == "done":
            acked.set_result([])
        elif state == "failed":
            acked.set_exception(KafkaTimeoutError())
        elif state == "cancelled":
            acked.cancel()
        relay._in_flight.track(last, acked, [])
        futures.append(acked)
    return relay, futures


async def test_acknowledged_batches_behind_a_pending_one_are_not_marked() -> None:
    relay, _ = relay_with((2, "pending"), (4, "done"), (6, "done"))
    conn = Writes()
    await relay._settle(conn)
    assert conn.statements == [] and len(relay._in_flight) == 3


async def test_a_run_of_acknowledged_batches_is_marked_once_up_to_its_last() -> None:
    relay, _ = relay_with((2, "done"), (4, "done"), (6, "pending"))
    conn = Writes()
    await relay._settle(conn)
    assert conn.marked() == [4] and relay.published_sequence == 4
    oldest = relay._in_flight.oldest
    assert len(relay._in_flight) == 1 and oldest is not None and oldest.last == 6


@pytest.mark.parametrize("state", ["failed", "cancelled"])
async def test_a_refused_batch_is_raised_after_marking_those_before_it(state: str) -> None:
    relay, _ = relay_with((2, "done"), (4, state), (6, "done"))
    conn = Writes()
    with pytest.raises(Exception) as caught:
        await relay._settle(conn)
    assert not isinstance(caught.value, asyncio.CancelledError)  # run() retries it, not stops
    assert conn.marked() == [2] and relay.published_sequence == 2


async def test_waiting_for_all_marks_them_all_once_each_is_acknowledged() -> None:
    relay, futures = relay_with((2, "pending"), (4, "done"), (6, "pending"))
    conn = Writes()
    settling = asyncio.create_task(relay._settle(conn, wait_all=True))
    await asyncio.sleep(0.01)
    futures[2].set_result([])
    await asyncio.sleep(0.01)
    assert not settling.done(), "the oldest is still unacknowledged"
    futures[0].set_result([])
    await settling
    assert conn.marked() == [6] and not relay._in_flight
