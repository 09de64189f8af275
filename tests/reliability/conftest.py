"""One fault lab for the reliability tests: the embedded stack, an SMTP sink and every service as
its own supervised process. Scenarios run in it one after another, as `golden-thread faults`
runs them; each checks only what its own load caused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from golden_thread.faults.lab import Lab
from golden_thread.faults.runner import QUICK, Result, run_scenario
from golden_thread.faults.scenarios import SCENARIOS


@pytest.fixture(scope="session")
async def lab() -> AsyncIterator[Lab]:
    async with Lab() as running:
        yield running


async def run(lab: Lab, name: str) -> Result:
    result = await run_scenario(lab, SCENARIOS[name], QUICK)
    print(f"{name}: {result.as_json()}")
    return result


def assert_exactly_once(result: Result) -> None:
    """Nothing lost, nothing duplicated, no scenario check failed, and recovered in time."""
    summary = f"{result.scenario}: {result.problems} {result.notes}"
    assert result.expected > 0 and result.sent > 0, f"the load got nothing through: {summary}"
    assert result.lost == 0, summary
    assert result.duplicated == 0, summary
    assert not result.problems, summary
    assert result.recovery_s is not None, summary
