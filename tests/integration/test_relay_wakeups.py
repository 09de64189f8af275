"""How the relay learns of new events: its own process's appends wake it directly, with no
NOTIFY (whose cluster-wide lock would serialise every commit through its WAL flush); appends
made elsewhere wake it by NOTIFY. The poll interval here is 30 s, so an event published within
seconds was published because of a wake-up, never because of the poll."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from eventcore.embedded import StackEndpoints
from eventcore.store import EventStore, notify_channel
from tests.integration.relay_kit import Rig, relay_rig
from tests.integration.store_kit import SOURCE, consent_draft

pytestmark = pytest.mark.integration

POLL_S = 30.0


@asynccontextmanager
async def leading_and_heard(endpoints: StackEndpoints) -> AsyncIterator[tuple[Rig, list[str]]]:
    """A relay leading here (30 s poll), and the NOTIFYs a listener of its channel hears."""
    heard: list[str] = []
    listener = await asyncpg.connect(endpoints.database_url)
    await listener.add_listener(notify_channel(SOURCE), lambda *args: heard.append(args[2]))
    try:
        async with relay_rig(endpoints, poll_interval_s=POLL_S) as rig:
            rig.start()
            assert await rig.leading()
            yield rig, heard
    finally:
        await listener.close()


async def test_appends_in_the_leaders_process_wake_it_and_send_no_notify(
        endpoints: StackEndpoints) -> None:
    async with leading_and_heard(endpoints) as (rig, heard):
        await rig.append(1, 2)  # each its own transaction (a group commit)
        async with rig.pool.acquire() as conn:  # one statement with the caller's writes
            await rig.store.append_with(
                conn, consent_draft(rig.subject, 3),
                "mark AS (SELECT 1 FROM ins WHERE $9::int = 1)", lambda body: [1])
        assert await rig.published_up_to(3)
        await asyncio.sleep(0.2)
        assert heard == [], "no NOTIFY while the relay leads in this process"


async def test_an_append_in_a_transaction_is_published_once_that_transaction_commits(
        endpoints: StackEndpoints) -> None:
    async with relay_rig(endpoints, poll_interval_s=POLL_S) as rig:
        rig.start()
        assert await rig.leading()
        async with rig.pool.acquire() as conn, conn.transaction():
            await rig.store.append(conn, [consent_draft(rig.subject, 1)])
            await asyncio.sleep(0.5)  # woken, the relay reads and finds nothing yet
            assert rig.relay.published_sequence == 0
        assert await rig.published_up_to(1)


async def test_after_a_rolled_back_append_the_next_one_is_published_without_delay(
        endpoints: StackEndpoints) -> None:
    """An append rolled back after a long transaction leaves the relay retrying at long
    intervals; the next append (also in a transaction, so not visible when it wakes the relay)
    must start the retries short again, and is published as soon as it commits."""
    async with relay_rig(endpoints, poll_interval_s=POLL_S) as rig:
        rig.start()
        assert await rig.leading()
        async with rig.pool.acquire() as conn:
            with pytest.raises(RuntimeError, match="rolled back"):
                async with conn.transaction():
                    await rig.store.append(conn, [consent_draft(rig.subject, 1)])
                    await asyncio.sleep(3.0)  # the relay's retries grow past a second
                    raise RuntimeError("rolled back")
            async with conn.transaction():  # the same sequence, written again
                await rig.store.append(conn, [consent_draft(rig.subject, 1)])
                await asyncio.sleep(0.05)
        published = rig.relay.published_sequence
        for _ in range(40):  # 2 s: far below the retry interval reached before
            if published == 1:
                break
            await asyncio.sleep(0.05)
            published = rig.relay.published_sequence
        assert published == 1
        async with rig.pool.acquire() as conn:
            assert len(await rig.store.read_after(conn, 0, 10)) == 1


async def test_an_append_whose_caller_was_cancelled_after_it_committed_wakes_the_relay(
        endpoints: StackEndpoints) -> None:
    """The caller gives up (a request timeout, say) while its append's statement is on its way;
    the statement commits all the same, and the relay must hear of it, not wait a poll."""
    async with relay_rig(endpoints, poll_interval_s=POLL_S) as rig:
        rig.start()
        assert await rig.leading()
        blocker = await asyncpg.connect(endpoints.database_url)
        try:
            schema = await rig.pool.fetchval("SELECT current_schema()")
            holding = blocker.transaction()
            await holding.start()
            await blocker.execute(f"SELECT 1 FROM {schema}.source_head FOR UPDATE")
            caller = asyncio.create_task(rig.append(1))
            await asyncio.sleep(0.3)  # its statement waits for the head row in the server
            caller.cancel()
            await holding.commit()  # now the statement goes through and commits
            with pytest.raises(asyncio.CancelledError):
                await caller
        finally:
            await blocker.close()
        assert await rig.published_up_to(1)  # within 5 s, far below the 30 s poll interval


async def test_appends_from_another_process_wake_the_leader_by_notify(
        endpoints: StackEndpoints) -> None:
    """Another process's store (here another `EventStore` of the same source) has no relay
    leading beside it: its appends NOTIFY, and the leader publishes them at once."""
    async with relay_rig(endpoints, poll_interval_s=POLL_S) as rig:
        rig.start()
        assert await rig.leading()
        elsewhere = EventStore(SOURCE)
        assert elsewhere.notifies
        await rig.append(1, 2, store=elsewhere)
        assert await rig.published_up_to(2)


async def test_a_notify_that_lands_while_the_last_read_comes_back_empty_is_not_lost(
        endpoints: StackEndpoints) -> None:
    """An event committed elsewhere just as the relay's read found nothing: its NOTIFY must
    end the wait at once, not after a whole poll interval."""
    await _race(endpoints, local=False)


async def test_an_append_here_that_lands_while_the_last_read_comes_back_empty_is_not_lost(
        endpoints: StackEndpoints) -> None:
    await _race(endpoints, local=True)


async def _race(endpoints: StackEndpoints, *, local: bool) -> None:
    async with relay_rig(endpoints, poll_interval_s=POLL_S) as rig:
        read_empty = rig.relay.publish_pending
        raced = asyncio.Event()
        writer = None if local else EventStore(SOURCE)

        async def racing(conn: asyncpg.Connection) -> int:
            published = await read_empty(conn)
            if published == 0 and not raced.is_set():  # the race: a commit right after the read
                raced.set()
                await rig.append(1, store=writer)
                await asyncio.sleep(0.3)  # its wake-up reaches the relay meanwhile
            return published

        rig.relay.publish_pending = racing  # type: ignore[method-assign]
        rig.start()
        await asyncio.wait_for(raced.wait(), 30)
        assert await rig.published_up_to(1)  # within 5 s, far below the 30 s poll interval


async def test_appends_notify_again_once_the_relay_stops_leading(
        endpoints: StackEndpoints) -> None:
    async with leading_and_heard(endpoints) as (rig, heard):
        assert rig.task is not None
        rig.task.cancel()
        await asyncio.gather(rig.task, return_exceptions=True)
        rig.task = None
        assert rig.store.notifies
        await rig.append(1)
        for _ in range(100):
            if heard:
                break
            await asyncio.sleep(0.05)
        assert heard, "the next leader, wherever it runs, is told by NOTIFY"
