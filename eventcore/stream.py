"""Wiring an idempotent consumer onto a FastStream Kafka broker."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import AckStatus

from eventcore.consumer import IdempotentConsumer
from eventcore.deadletter import IncomingMessage
from eventcore.errors import describe
from eventcore.failpoints import hit
from eventcore.prepared import PreparedBatch
from eventcore.settings import CoreSettings

log = logging.getLogger(__name__)


async def batch_parser(records: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's batch message, made without decoding every record's headers.

    FastStream's own batch parser decodes each record's headers into a dict, and its telemetry
    middleware then reads baggage and links from each (≈ 6 % of insight's samples,
    docs/performance.md finding 103). The consumer reads the raw records itself (traceparent,
    `ce_type`), so FastStream is given the first record's headers only: the relay sends no
    baggage and no `correlation_id` (its batch span links only records carrying one), which is
    all it read from the others. The batch's body, raw records and id are the whole batch's. A
    first record with a header that is not UTF-8 or has no value at all (FastStream would fail
    the batch on it before the consumer could dead-letter anything, finding 109) is given to
    FastStream as a copy whose headers decode; the raw records stay as sent. Nobody is
    answered (`no_reply`): a record's `reply_to` header names no topic this consumer publishes
    to."""
    first = records[0]
    parsed = await original((_readable(first),))
    parsed.body = [r.value or b"" for r in records]
    parsed.raw_message = records
    parsed.message_id = f"{first.offset}-{records[-1].offset}-{first.timestamp}"
    return parsed


async def raw_decoder(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """The consumer parses the raw bytes itself (contracts.parse_event); FastStream's own JSON
    decoding of every message would be thrown away, so it is not done."""
    return None


def _headers_decode(record: Any) -> bool:
    try:
        for _, value in record.headers:
            value.decode()  # a header with no value is None (AttributeError)
    except (UnicodeDecodeError, AttributeError):
        return False
    return True


def _readable(record: Any) -> Any:
    if _headers_decode(record):
        return record
    return dataclasses.replace(
        record, headers=[(k, (v or b"").decode("utf-8", "replace").encode())
                         for k, v in record.headers])


def subscribe(
    broker: KafkaBroker,
    consumer: IdempotentConsumer,
    topics: Sequence[str],
    settings: CoreSettings,
    *,
    group_id: str | None = None,
) -> tuple[Any, BatchPipeline]:
    """Subscribe `consumer` to `topics` in its own consumer group: batches of up to
    `consumer_batch_max_records`, each applied by a `BatchPipeline`, which commits a batch's
    offsets once its effects are. Returns FastStream's subscriber and the pipeline (to stop
    with the service: `BatchPipeline.stop`)."""
    pipeline = BatchPipeline(consumer)
    subscriber = broker.subscriber(
        *topics,
        group_id=group_id or consumer.name,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        # A batch that fails before its task starts (FastStream's parser, a middleware,
        # `prepare`) is read again: FastStream seeks back to its first records. Its ack, which
        # would commit whatever has been fetched (the next batch's too), is spent by
        # `BatchPipeline.on_batch`: the task commits the batch's own offsets.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        no_reply=True,
        listener=pipeline,
        title=f"{consumer.name}:{','.join(topics)}",
        parser=batch_parser,
        decoder=raw_decoder,
        batch=True,
        max_records=settings.consumer_batch_max_records,
        batch_timeout_ms=settings.consumer_batch_wait_ms,
    )
    subscriber(pipeline.on_batch)
    return subscriber, pipeline


class BatchPipeline(ConsumerRebalanceListener):  # type: ignore[misc]
    """Reads a batch while the one before it is being applied (docs/performance.md, finding 77).

    FastStream hands over one batch at a time and fetches the next when the handler returns.
    Here a batch is applied, and then its offsets committed, by a task of its own, so the
    handler returns once that task has started: the next batch is parsed and checked (CPU in
    this process) while the database works on this one. What a batch at a time guaranteed
    still holds:

    - *order*: a batch's transaction starts only after the one before it has committed; its
      offsets are committed only after the batch before it has committed its own (while those
      are on their way to the broker, this batch's transaction goes on: finding 81);
    - *offsets after effects*: the offsets committed are the batch's own (the next one's are
      fetched by then), and only once its transaction has committed;
    - *nothing skipped*: a batch that fails before its task starts is read again (FastStream
      seeks back to it); one that fails to apply (a dead letter that cannot be sent) is retried,
      with back-off, before anything after it starts; an offset commit that fails (the group
      rebalanced) is left to the next batch's commit, else to redelivery, which the inbox makes
      harmless;
    - *rebalances*: revoking partitions waits for the batches in flight (`REVOKE_WAIT_S` at
      most), so their offsets are committed while the partitions are still this consumer's; a
      batch read before the rebalance and not yet started is dropped, and the partitions'
      owners read it again from their committed offsets;
    - *stopping* waits for the batches in flight (`stop`) before the consumer leaves its group.
    """

    #: Back-off between tries of a batch that failed to apply: doubling from the first, up to
    #: the last.
    RETRY_S = (0.1, 5.0)
    #: How long a rebalance waits for the batches in flight before it goes on without them
    #: (their commits then fail harmlessly: the new owner reads them again and the inbox skips
    #: them).
    REVOKE_WAIT_S = 10.0

    def __init__(self, consumer: IdempotentConsumer) -> None:
        self.consumer = consumer
        #: The last batch's task; it finishes after the task before it (`_apply`).
        self._in_flight: asyncio.Task[None] | None = None
        #: Set once the last batch's transaction has committed (or its task has ended).
        self._applied: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        #: Bumped when partitions are revoked: a batch read before then is not applied.
        self._rebalances = 0

    async def on_batch(self, message: KafkaMessage) -> None:
        rebalances = self._rebalances
        records = message.raw_message
        batch = await self.consumer.prepare([IncomingMessage.from_record(r) for r in records])
        try:
            if self._applied is not None:
                await self._applied.wait()
            # At most one batch committing its offsets while this one applies: should the broker
            # be slow to answer, batches wait here rather than pile up in memory.
            committing = [t for t in self._tasks if t is not self._in_flight]
            if committing:
                await asyncio.wait(committing)
        except BaseException:  # cancelled while the batch before applies: it goes on alone
            batch.finish()
            raise
        # FastStream's ack would commit all that was fetched; this batch's task commits its own.
        message.committed = AckStatus.ACKED
        if self._stopped or rebalances != self._rebalances:
            # Neither applied nor committed: whoever reads these partitions next, from their
            # committed offsets, reads it again.
            batch.finish()
            return
        applied = self._applied = asyncio.Event()
        task = asyncio.create_task(
            self._apply(batch, message.consumer, _next_offsets(records), applied,
                        self._in_flight),
            name=f"{self.consumer.name}-batch")
        self._in_flight = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # However it ends (even cancelled before its first step), nothing waits for it in vain.
        task.add_done_callback(lambda _: applied.set())

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """(aiokafka's rebalance listener.) Batches read until now are not applied here, and
        those in flight may commit their offsets first (`REVOKE_WAIT_S` at most)."""
        self._rebalances += 1
        await self.drain(self.REVOKE_WAIT_S)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait for the batches in flight, if any, to be applied and their offsets committed
        (at most `timeout_s`). Waiting is never what cancels them."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def stop(self, timeout_s: float) -> None:
        """Take no more batches (those fetched later are left uncommitted, for redelivery) and
        wait for those in flight, at most `timeout_s`; then cancel them."""
        self._stopped = True
        await self.drain(timeout_s)
        if self._tasks:
            log.warning("%s: %d batch(es) in flight did not finish in %.0f s; cancelled "
                        "(their messages are read again)", self.consumer.name, len(self._tasks),
                        timeout_s)
            tasks = set(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    async def _apply(self, batch: PreparedBatch, kafka: Any,
                     offsets: dict[TopicPartition, OffsetAndMetadata], applied: asyncio.Event,
                     before: asyncio.Task[None] | None) -> None:
        ended = False
        try:
            delay, most = self.RETRY_S
            while True:
                try:
                    await self.consumer.apply(batch)
                    break
                except Exception as exc:  # noqa: BLE001 - retried: nothing after it may start
                    log.error("%s: batch of %d failed to apply (%s); retrying in %.1f s",
                              self.consumer.name, len(batch.messages), describe(exc), delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, most)
            ended = True
            batch.finish()  # its spans end once it is applied
            applied.set()  # the next batch's transaction may start
            if before is not None:  # committed offsets never go back
                await asyncio.wait({before})
            hit("consumer.before_offset_commit")
            await _commit(self.consumer.name, kafka, offsets)
        finally:
            if not ended:  # cancelled before it applied (`stop`)
                batch.finish()
        # Its events are freed as this task ends, while the next batch's transaction runs.


def _next_offsets(records: Sequence[Any]) -> dict[TopicPartition, OffsetAndMetadata]:
    """Per partition, the offset after the batch's last record there: what to commit."""
    last: dict[tuple[str, int], int] = {}
    for record in records:  # in offset order within a partition
        last[record.topic, record.partition] = record.offset
    return {TopicPartition(*tp): OffsetAndMetadata(offset + 1, "") for tp, offset in last.items()}


async def _commit(name: str, kafka: Any,
                  offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
    """Commit `offsets` of the partitions still assigned. A failure is logged, not raised: a
    later commit of the same partition covers these offsets, and failing that the messages are
    read again and the inbox skips them."""
    assigned = kafka.assignment()
    mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
    if len(mine) < len(offsets):
        log.info("%s: %d partition(s) of the batch were revoked before its offsets were "
                 "committed; their next owner reads them again", name, len(offsets) - len(mine))
    if not mine:
        return
    try:
        await kafka.commit(mine)
    except Exception as exc:  # noqa: BLE001 - CommitFailedError (rebalanced), a closed client…
        log.warning("%s: offsets not committed (%s); a later commit covers them, or they are "
                    "read again and the inbox skips them", name, describe(exc))
