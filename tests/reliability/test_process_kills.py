"""kill -9 at the dangerous moments, under load: every effect still happens exactly once."""

from __future__ import annotations

import pytest

from golden_thread.faults.lab import Lab
from tests.reliability.conftest import assert_exactly_once, run

pytestmark = pytest.mark.e2e


async def test_a_service_killed_between_its_commit_and_its_publish_loses_nothing(lab: Lab) -> None:
    result = await run(lab, "kill_after_commit_before_publish")
    assert result.kills >= 1, result.notes
    assert_exactly_once(result)


async def test_a_relay_killed_after_the_ack_before_marking_repeats_no_effect(lab: Lab) -> None:
    result = await run(lab, "kill_relay_after_ack")
    assert result.kills >= 1, result.notes
    assert_exactly_once(result)


async def test_a_consumer_killed_after_its_effects_before_its_offset_repeats_nothing(
    lab: Lab,
) -> None:
    result = await run(lab, "kill_consumer_before_offset_commit")
    assert result.kills >= 1, result.notes
    assert_exactly_once(result)


async def test_every_service_killed_at_random_moments_keeps_effects_exactly_once(lab: Lab) -> None:
    result = await run(lab, "kill_random_moments")
    assert result.kills >= 2, result.notes
    assert_exactly_once(result)
