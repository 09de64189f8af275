"""Consumer groups under stress: a rebalance mid-batch, a handler slower than the poll
interval, and a poison message that must not stall its partition."""

from __future__ import annotations

import pytest

from golden_thread.faults.lab import Lab
from tests.reliability.conftest import assert_exactly_once, run

pytestmark = pytest.mark.e2e


async def test_two_instances_one_killed_mid_batch_one_too_slow_apply_each_event_once(
    lab: Lab,
) -> None:
    result = await run(lab, "rebalance_and_slow_handler")
    assert result.kills == 1, result.notes
    assert_exactly_once(result)
    assert "insight#2" not in lab.services.instances


async def test_poison_message_is_dead_lettered_with_its_headers_and_lag_returns_to_zero(
    lab: Lab,
) -> None:
    result = await run(lab, "poison_message")
    assert_exactly_once(result)  # includes the dead-letter and lag checks (result.problems)
    assert any("lag back to zero" in note for note in result.notes), result.notes
