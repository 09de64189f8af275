"""The producer's batch size is a setting: validated, and what the relay's producer uses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from eventcore.messaging import make_producer
from eventcore.settings import CoreSettings


@pytest.mark.parametrize("size", [16_384, 262_144])
async def test_the_producer_builds_batches_of_the_configured_size(size: int) -> None:
    producer = make_producer(CoreSettings(kafka_max_batch_bytes=size), "localhost:9", "t")
    try:
        # aiokafka keeps it only in its accumulator; not started, so nothing connects.
        assert producer._message_accumulator._batch_size == size
    finally:
        await producer.stop()


@pytest.mark.parametrize("size", [0, 1_023, 1_000_001])
def test_a_batch_size_out_of_range_is_refused_naming_the_setting(size: int) -> None:
    with pytest.raises(ValidationError) as caught:
        CoreSettings(kafka_max_batch_bytes=size)
    assert "kafka_max_batch_bytes" in str(caught.value)


def test_the_default_is_kafkas_batch_size() -> None:
    assert CoreSettings().kafka_max_batch_bytes == 16_384
