"""The outbox relay's batches sent and not yet settled, oldest first (`OutboxRelay`).

A batch is handed to the producer without waiting for its acknowledgements; it is settled once
it and every batch before it are acknowledged. A refused batch stops the settling there, so
nothing after it is marked before it is sent again. Order per partition holds because aiokafka
keeps one request in flight per broker and puts a failed one back in front of anything behind
it; only a batch it gives up on (non-retriable, or expired after `request_timeout_ms`, as a
batch waiting for an unknown partition leader can be even with idempotence) can let a later one
land before its re-sent copy, as a producer batch given up on within one relay batch always
could. One in flight is the default: on the embedded broker the smaller record batches that more
write cost readers more than they save (docs/performance.md, finding 62).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from eventcore.messaging import OutgoingMessage
from eventcore.produce import PartitionBatch, partition_batches


@dataclass(slots=True)
class Sent:
    """A batch handed to the producer: its last sequence, and its acknowledgements to come (one
    per partition batch, in the order of `batches`)."""

    last: int
    acked: asyncio.Future[list[RecordMetadata]]
    batches: list[PartitionBatch]


class InFlight:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("max_in_flight: must be at least 1")
        self.limit = limit
        self._sent: deque[Sent] = deque()

    def __len__(self) -> int:
        return len(self._sent)

    @property
    def full(self) -> bool:
        return len(self._sent) >= self.limit

    @property
    def oldest(self) -> Sent | None:
        return self._sent[0] if self._sent else None

    def track(self, last: int, acked: asyncio.Future[list[RecordMetadata]],
              batches: list[PartitionBatch]) -> None:
        self._sent.append(Sent(last, acked, batches))

    async def send(self, producer: AIOKafkaProducer, last: int,
                   messages: list[OutgoingMessage]) -> None:
        """Hand a batch to the producer, one record batch per partition (`produce`). It waits for
        the topics' metadata and, per partition, until the producer has taken the partition's
        last queued record batch into a request (with `max_in_flight` above 1, the next relay
        batch's record batch for a partition can so wait for the last one's to be sent)."""
        batches = await partition_batches(producer, messages)
        futures: list[asyncio.Future[RecordMetadata]] = []
        try:
            for batch in batches:
                futures.append(await producer.send_batch(batch.builder, batch.topic,
                                                         partition=batch.partition))
                batch.builder = None  # the producer holds it until it is acknowledged
        except BaseException:  # half sent: the next leader re-sends it all; read their outcome
            for future in futures:
                future.add_done_callback(read_outcome)
            raise
        self.track(last, asyncio.gather(*futures), batches)

    async def wait_oldest(self) -> None:
        if self._sent:
            await asyncio.wait([self._sent[0].acked])

    async def wait_all(self) -> None:
        if self._sent:
            await asyncio.wait([sent.acked for sent in self._sent])

    def acknowledged(self) -> tuple[list[tuple[Sent, list[RecordMetadata]]], Exception | None]:
        """Take the acknowledged batches off the front, each with its acknowledgements (one per
        partition batch), and the
        error of a refused batch that stopped the taking (taken off too: it is re-sent from the
        stored cursor, by a leader afresh)."""
        done: list[tuple[Sent, list[RecordMetadata]]] = []
        while self._sent and self._sent[0].acked.done():
            sent = self._sent.popleft()
            try:
                done.append((sent, sent.acked.result()))
            except asyncio.CancelledError:  # a future cancelled under it: not acknowledged
                return done, KafkaError("an acknowledgement was cancelled")
            except Exception as exc:  # noqa: BLE001 - the caller marks what came before, then raises
                return done, exc
        return done, None

    def abandon(self) -> None:
        """Leaving the lead: what is in flight is re-sent by the next leader from the stored
        cursor; its outcome is read so a failure is not logged as never retrieved."""
        for sent in self._sent:
            sent.acked.add_done_callback(read_outcome)
        self._sent.clear()


def read_outcome(future: asyncio.Future[Any]) -> None:
    """Read a future's outcome, so a failure no one waits for is not logged as never retrieved."""
    if not future.cancelled():
        future.exception()
