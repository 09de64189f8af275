"""PostgreSQL and the broker restart under load: services ride it out, nothing half-written."""

from __future__ import annotations

import pytest

from golden_thread.faults.lab import Lab
from tests.reliability.conftest import assert_exactly_once, run

pytestmark = pytest.mark.e2e


async def test_postgres_restart_under_load_leaves_nothing_half_written(lab: Lab) -> None:
    assert_exactly_once(await run(lab, "postgres_restart"))


async def test_broker_restart_loses_topics_and_offsets_yet_effects_stay_exactly_once(
    lab: Lab,
) -> None:
    # Consumers' committed offsets are gone too: they read again from the beginning, and the
    # relays re-publish every stored event; the inboxes absorb all of it.
    assert_exactly_once(await run(lab, "broker_restart"))
