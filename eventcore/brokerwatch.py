"""Notices when the broker lost what the relay published (an in-memory broker restarted).

The relay remembers the last message each partition acknowledged (offset and event id). A check
reads that offset back: if the message is gone or another one stands there, the history is lost
and the relay re-publishes from its store (consumers' inboxes absorb the repeats). A durable
broker keeps it, so against Apache Kafka nothing is ever re-sent. (Reading back is used rather
than comparing end offsets because Tansu reports a partition's end per batch, not per record.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError
from aiokafka.structs import RecordMetadata

log = logging.getLogger(__name__)


class BrokerWatch:
    def __init__(self, bootstrap_servers: str, *, read_timeout_s: float = 1.0) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._read_timeout_s = read_timeout_s
        self._acked: dict[TopicPartition, tuple[int, bytes]] = {}

    def record(self, acks: Iterable[tuple[RecordMetadata, bytes]]) -> None:
        """Remember, per partition, the newest acknowledged offset and its event id."""
        for meta, event_id in acks:
            tp = TopicPartition(meta.topic, meta.partition)
            if meta.offset >= self._acked.get(tp, (-1, b""))[0]:
                self._acked[tp] = (meta.offset, event_id)

    def forget(self) -> None:
        self._acked.clear()

    async def history_lost(self) -> bool:
        # A snapshot: the relay goes on publishing (and recording acks) while this checks.
        acked = dict(self._acked)
        if not acked:
            return False
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers, enable_auto_commit=False,
            auto_offset_reset="none", fetch_max_wait_ms=10,
        )
        try:
            await consumer.start()  # inside: a start cut short is stopped too
            consumer.assign(list(acked))
            for tp, (offset, _) in acked.items():
                consumer.seek(tp, offset)
            lost = [tp for tp, seen in acked.items() if not await self._still_there(consumer, tp, seen)]
        finally:
            await consumer.stop()
        if lost:
            log.warning("broker lost published history on %d partition(s), e.g. %s[%d]",
                        len(lost), lost[0].topic, lost[0].partition)
        return bool(lost)

    async def _still_there(self, consumer: AIOKafkaConsumer, tp: TopicPartition,
                           seen: tuple[int, bytes]) -> bool:
        offset, event_id = seen
        try:
            records = (await consumer.getmany(tp, timeout_ms=int(self._read_timeout_s * 1000))).get(tp, [])
        except OffsetOutOfRangeError:
            return False
        except KafkaError:
            return True  # cannot tell now; the next check will
        record = next((r for r in records if r.offset == offset), None)
        if record is not None:
            return dict(record.headers or ()).get("ce_id") == event_id
        if records:
            return False  # the partition moved on without our message: another history
        # Nothing came back: gone only if the partition now ends before our offset.
        end = (await consumer.end_offsets([tp])).get(tp, 0)
        return bool(end > offset)
