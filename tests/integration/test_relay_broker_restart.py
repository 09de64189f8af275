"""An in-memory broker that restarts loses its topics: the relay notices and re-publishes."""

from __future__ import annotations

import asyncio

import pytest

from contracts.topics import ALL_TOPICS
from eventcore.brokerwatch import BrokerWatch
from eventcore.embedded import EmbeddedStack, StackEndpoints
from eventcore.settings import CoreSettings
from tests.integration.relay_kit import relay_rig
from tests.integration.relay_reader import read_published

pytestmark = pytest.mark.integration


async def test_relay_republishes_from_its_store_after_the_broker_lost_history() -> None:
    # Its own stack: restarting the session's broker would disturb every other test.
    stack = EmbeddedStack(CoreSettings(), topics=ALL_TOPICS)
    async with stack as endpoints, relay_rig(endpoints, poll_interval_s=0.05,
                                             broker_check_interval_s=0.2) as rig:
        rig.start()
        ids = await rig.append(*range(1, 11))
        assert len(await read_published(endpoints, ids, settle_s=0.1)) == 10

        await stack.restart_broker()
        republished = await read_published(endpoints, ids, settle_s=1.0, timeout_s=60)
        assert sorted(e.sequence for e in republished) == list(range(1, 11))
        assert rig.relay.republished_from_store == 1


async def test_publishing_goes_on_while_the_broker_check_runs(
    endpoints: StackEndpoints, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check reads back from the broker with a client of its own; events committed while it
    runs are published at once, not after it."""
    checking, release = asyncio.Event(), asyncio.Event()

    async def slow_check(self: BrokerWatch) -> bool:
        checking.set()
        await release.wait()
        return False

    monkeypatch.setattr(BrokerWatch, "history_lost", slow_check)
    async with relay_rig(endpoints, poll_interval_s=5.0, broker_check_interval_s=0.05) as rig:
        rig.start()
        try:
            await asyncio.wait_for(checking.wait(), 30)  # a check is under way, and stays so
            ids = await rig.append(1, 2, 3)
            published = await read_published(endpoints, ids, settle_s=0.1, timeout_s=20)
            assert {e.id for e in published} == ids
            assert await rig.published_up_to(3) and not release.is_set()
        finally:
            release.set()
