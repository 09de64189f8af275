"""The relay rig (`python -m golden_thread.bench.relay_rig`) times a relay that publishes every
event it stored, on the real broker and database, and reports figures, not a pass or fail."""

from __future__ import annotations

from collections import Counter

import pytest

from eventcore.embedded import StackEndpoints
from golden_thread.bench.fixtures import Drafts
from golden_thread.bench.relay_rig import catch_up
from golden_thread.bench.store_append import DraftSupply
from tests.integration.relay_reader import read_records

pytestmark = pytest.mark.integration

EVENTS = 1_200


async def test_the_rig_times_a_relay_that_publishes_all_it_stored(
        endpoints: StackEndpoints) -> None:
    drafts = DraftSupply(Drafts(), templates=16)
    drafts.prepare(EVENTS)
    done = await catch_up(endpoints, EVENTS, drafts, timeout_s=60)
    assert done.events == EVENTS and done.seconds > 0 and done.cpu_us_per_event > 0
    # Read, not counted from the end offsets: right after the acknowledgements the embedded
    # broker's ListOffsets answered 1,187 and 1,195 for 1,200 records all there to be read.
    partitions, read = await read_records(endpoints, done.topic, EVENTS)
    assert partitions == 3
    seen = Counter(int(dict(r.headers)["ce_sequence"]) for r in read)
    assert seen == Counter(range(1, EVENTS + 1))  # each stored event, once
