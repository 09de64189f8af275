"""The message FastStream gets for a batch (`eventcore.stream.batch_parser`): the whole batch's
records, bodies and id, with only the first record's headers decoded, and never a failure on a
header that is not UTF-8 or has no value. FastStream's own batch parser is the `original` it builds on, as
when subscribed. (That such a header reaches a consumer through a real broker, is
dead-lettered and does not stop it: tests/hostile/test_kafka_hostile.py.)"""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser

from eventcore.stream import batch_parser

NOT_UTF8 = b"\xff\xfe\xed"


def _record(offset: int, headers: list[tuple[str, bytes | None]], value: bytes | None = b"{}",
            ) -> ConsumerRecord[bytes, bytes]:
    # aiokafka gives a header with no value as None.
    return ConsumerRecord(topic="intake.conversations.v1", partition=2, offset=offset,
                          timestamp=1_700_000_000_000 + offset, timestamp_type=0, key=b"k",
                          value=value, checksum=None, serialized_key_size=1,
                          serialized_value_size=len(value or b""),
                          headers=headers)


async def _parse(records: tuple[ConsumerRecord[bytes, bytes], ...]) -> KafkaMessage:
    parsed: KafkaMessage = await batch_parser(
        records, AioKafkaBatchParser(KafkaMessage, None).parse_batch)
    return parsed


async def test_the_message_is_the_whole_batch_with_the_first_records_headers() -> None:
    records = (
        _record(40, [("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"),
                     ("correlation_id", b"c-1")]),
        _record(41, [("traceparent", b"00-" + b"c" * 32 + b"-" + b"d" * 16 + b"-01")],
                value=None),
        _record(42, [("ce_type", b"ConversationLogged")], value=b'{"x":1}'),
    )
    parsed = await _parse(records)
    assert parsed.raw_message is records
    assert parsed.body == [b"{}", b"", b'{"x":1}']
    assert parsed.message_id == "40-42-1700000000040"
    assert parsed.headers == {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
                              "correlation_id": "c-1"}
    assert parsed.batch_headers == [parsed.headers]
    assert parsed.correlation_id == "c-1"


async def test_a_header_that_is_not_utf8_fails_nothing_and_the_records_stay_as_sent() -> None:
    first = _record(7, [("x-mark", NOT_UTF8), ("ce_type", b"ConversationLogged")])
    later = _record(8, [("x-mark", NOT_UTF8)])
    parsed = await _parse((first, later))
    assert parsed.raw_message == (first, later)
    assert parsed.raw_message[0].headers == [("x-mark", NOT_UTF8),
                                             ("ce_type", b"ConversationLogged")]
    assert parsed.headers == {"x-mark": NOT_UTF8.decode("utf-8", "replace"),
                              "ce_type": "ConversationLogged"}
    assert parsed.message_id == "7-8-1700000000007"


@pytest.mark.parametrize("count", [1, 2_000])
async def test_batches_of_one_and_of_the_largest_size(count: int) -> None:
    records = tuple(_record(n, [("traceparent", b"t")], value=b"%d" % n) for n in range(count))
    parsed = await _parse(records)
    assert parsed.body == [b"%d" % n for n in range(count)]
    assert parsed.message_id == f"0-{count - 1}-1700000000000"
    assert len(parsed.batch_headers) == 1


async def test_a_header_with_no_value_fails_nothing() -> None:
    """Kafka lets a header have no value at all (aiokafka gives it as None); FastStream's own
    parser would fail the batch on it, before the consumer could dead-letter anything."""
    first = _record(3, [("traceparent", None), ("ce_type", b"ConversationLogged")])
    later = _record(4, [("x-none", None)])
    parsed = await _parse((first, later))
    assert parsed.raw_message == (first, later)
    assert parsed.headers == {"traceparent": "", "ce_type": "ConversationLogged"}
    assert parsed.body == [b"{}", b"{}"]
