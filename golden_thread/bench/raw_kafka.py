"""Raw broker limits with aiokafka and nothing else, on topics of their own.

- produce with acks=all (the relay's producer settings), pipelined;
- consume in a consumer group, committing after each fetched batch;
- produce and consume together (a consumer already in its group while the producer sends);
- latency, send to receipt, at a paced rate, with the system's fetch settings.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import for_code
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from eventcore.embedded import StackEndpoints
from eventcore.embedded.topics import delete_topics
from eventcore.settings import CoreSettings
from golden_thread.bench.infra import new_topics
from golden_thread.bench.report import RawLimit
from golden_thread.bench.timing import percentile

log = logging.getLogger(__name__)

IN_FLIGHT = 2_000
#: Most bytes a `record_batches` fetch asks for.
FETCH_BYTES = 8 << 20


def producer(endpoints: StackEndpoints) -> AIOKafkaProducer:
    """The same settings as eventcore.messaging.make_producer."""
    return AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers, acks="all",
                            enable_idempotence=endpoints.kafka_enable_idempotence, linger_ms=2,
                            max_batch_size=CoreSettings().kafka_max_batch_bytes,
                            client_id="bench-raw-producer")


async def produce(prod: AIOKafkaProducer, topic: str, payload: bytes, count: int) -> float:
    """Send `count` messages pipelined (at most IN_FLIGHT unacknowledged); returns seconds."""
    started = time.perf_counter()
    pending: list[asyncio.Future[object]] = []
    for n in range(count):
        pending.append(await prod.send(topic, payload, key=str(n).encode()))
        if len(pending) >= IN_FLIGHT:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    return time.perf_counter() - started


async def joined_consumer(endpoints: StackEndpoints, topic: str, group: str,
                          fetch_max_wait_ms: int | None = None) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=endpoints.kafka_bootstrap_servers, group_id=group,
        auto_offset_reset="earliest", enable_auto_commit=False,
        fetch_max_wait_ms=fetch_max_wait_ms or endpoints.kafka_fetch_max_wait_ms,
        session_timeout_ms=10_000, heartbeat_interval_ms=1_000)
    await consumer.start()
    return consumer


async def consume(consumer: AIOKafkaConsumer, count: int, timeout_s: float) -> list[float]:
    """Receipt times of `count` messages, committing after each batch."""
    stamps: list[float] = []
    deadline = time.perf_counter() + timeout_s
    while len(stamps) < count and time.perf_counter() < deadline:
        batches = await consumer.getmany(timeout_ms=100, max_records=2_000)
        if batches:
            now = time.perf_counter()
            for records in batches.values():
                stamps.extend(now for _ in records)
            await consumer.commit()
    return stamps


@dataclass
class KafkaRaw:
    produce: RawLimit
    consume: RawLimit
    pipeline: RawLimit


async def measure(endpoints: StackEndpoints, payload: bytes, count: int) -> KafkaRaw:
    tag = secrets.token_hex(3)
    t_fill, t_pipe = f"bench.raw.consume.{tag}", f"bench.raw.pipeline.{tag}"
    await new_topics(endpoints, [t_fill, t_pipe])
    prod = producer(endpoints)
    await prod.start()
    try:
        await produce(prod, t_fill, payload, min(200, count))  # warm-up: connections, metadata
        seconds = await produce(prod, t_fill, payload, count)
        produced = RawLimit("kafka.produce", f"aiokafka produce acks=all, {len(payload)} B JSON",
                            count / seconds, "msg/s", {"messages": count, "bytes": len(payload)})
        total = count + min(200, count)
        # Both consumers join their groups at once (a join takes ~5 s on Tansu).
        fill_consumer, pipe_consumer = await asyncio.gather(
            joined_consumer(endpoints, t_fill, f"bench-raw-consume-{tag}"),
            joined_consumer(endpoints, t_pipe, f"bench-raw-pipeline-{tag}"))
        try:
            pipe_ready = asyncio.create_task(_wait_assigned(pipe_consumer))
            stamps = await consume(fill_consumer, total, timeout_s=60 + count / 1_000)
            consumed = RawLimit("kafka.consume", "aiokafka consume in a group, commit per batch",
                                _after_first_batch(stamps), "msg/s", {"messages": len(stamps)})
            await pipe_ready
            receiving = asyncio.create_task(consume(pipe_consumer, count, 60 + count / 1_000))
            started = time.perf_counter()
            await produce(prod, t_pipe, payload, count)
            received = await receiving
            elapsed = (max(received) if received else time.perf_counter()) - started
            pipeline = RawLimit("kafka.produce_consume",
                                "aiokafka produce (acks=all) and consume (group, commits) together",
                                len(received) / elapsed, "msg/s", {"messages": len(received)})
        finally:
            await asyncio.gather(fill_consumer.stop(), pipe_consumer.stop())
    finally:
        await prod.stop()
    return KafkaRaw(produced, consumed, pipeline)


def _after_first_batch(stamps: list[float]) -> float:
    """Messages per second from the first fetched batch on (the group join is not counted)."""
    if not stamps:
        return 0.0
    first, last = stamps[0], stamps[-1]
    later = sum(1 for s in stamps if s > first)
    return later / (last - first) if last > first else 0.0


async def _wait_assigned(consumer: AIOKafkaConsumer, timeout_s: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not consumer.assignment():
        if time.perf_counter() > deadline:
            raise TimeoutError("raw consumer was not assigned partitions")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def mirrored_topic(endpoints: StackEndpoints, payload_size: int,
                         shape: Mapping[int, Sequence[int]]) -> AsyncIterator[str]:
    """A topic filled as `shape` says: per partition, the number of messages in each record
    batch, in order (`record_batches` of the system's topic). Tansu slows as a topic fills, by
    its record batches more than its messages: a topic of 20,000 messages written three at a
    time answered at p99 63–72 ms, the same written 2,000 at a time at 16–19 ms
    (docs/performance.md, finding 61). Made before the system's paced run, so that both runs
    share a broker holding it; deleted after, whatever happened (its batches would burden every
    later phase: finding 63)."""
    topic = f"bench.raw.latency.{secrets.token_hex(3)}"
    await new_topics(endpoints, [topic], partitions=max(shape, default=0) + 1)
    try:
        # Batches as large as the system's may be (its keys and headers fit more per 16 KiB than
        # the bare filler does), each sent at once as it is whole.
        filling = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                   acks="all", linger_ms=0, max_batch_size=FETCH_BYTES,
                                   enable_idempotence=endpoints.kafka_enable_idempotence)
        await filling.start()
        try:
            filler = b"x" * payload_size
            await asyncio.gather(*(fill_batches(filling, TopicPartition(topic, p), filler, sizes)
                                   for p, sizes in shape.items()))
        finally:
            await filling.stop()
        yield topic
    finally:
        try:
            await delete_topics(endpoints.kafka_bootstrap_servers, [topic])
        except Exception as exc:  # noqa: BLE001 - the figures stand; the leftover is logged
            log.warning("could not delete %s: %s: %s", topic, type(exc).__name__, exc)


async def latency(endpoints: StackEndpoints, topic: str, payload_size: int, rate: float,
                  seconds: float) -> tuple[float, float]:
    """Send-to-receipt latency p50 and p99 (ms) at `rate` msg/s for `seconds` on `topic` (a
    `mirrored_topic`), the consumer's fetch wait as the services have it. The consumer is
    assigned its partitions (no group join) and starts at the end."""
    filler = b"x" * payload_size
    prod = producer(endpoints)
    await prod.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=endpoints.kafka_fetch_max_wait_ms)
    receiving: asyncio.Task[None] | None = None
    try:
        await consumer.start()
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic)
                                                         or await _partitions(consumer, topic))]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        total = max(1, int(rate * seconds))
        latencies: list[float] = []

        async def receive() -> None:
            while len(latencies) < total:
                batches = await consumer.getmany(timeout_ms=200)
                now = time.time()
                for records in batches.values():
                    for r in records:
                        (sent,) = struct.unpack_from(">d", r.value)
                        latencies.append((now - sent) * 1000)

        receiving = asyncio.create_task(receive())
        loop = asyncio.get_running_loop()
        begin = loop.time()
        sends = []
        for n in range(total):
            delay = begin + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = struct.pack(">d", time.time()) + filler[8:]
            sends.append(await prod.send(topic, body, key=str(n).encode()))
        await asyncio.gather(*sends)
        await asyncio.wait_for(receiving, timeout=30)
    finally:
        if receiving is not None:
            receiving.cancel()
        await consumer.stop()
        await prod.stop()
    return percentile(latencies, 50), percentile(latencies, 99)


async def fill_batches(prod: AIOKafkaProducer, tp: TopicPartition, filler: bytes,
                       sizes: Sequence[int]) -> None:
    """Write `sizes` record batches to `tp`: each waits for the last, so none are merged."""
    for size in sizes:
        await asyncio.gather(*[await prod.send(tp.topic, filler, partition=tp.partition)
                               for _ in range(size)])


async def record_batches(endpoints: StackEndpoints, topic: str) -> dict[int, list[int]]:
    """Per partition of `topic`, the number of messages in each of its record batches, in
    order: read with plain fetch requests from offset 0 (aiokafka's consumer hides batches)."""
    client = AIOKafkaClient(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await client.bootstrap()
    shape: dict[int, list[int]] = {}
    try:
        await client.force_metadata_update()
        partitions = client.cluster.partitions_for_topic(topic)
        if not partitions:
            raise RuntimeError(f"topic {topic!r} has no partitions the broker knows of")
        for partition in sorted(partitions):
            node = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            offset, sizes = 0, shape.setdefault(partition, [])
            while True:
                response = await client.send(node, FetchRequest(
                    100, 1, FETCH_BYTES, 0, [(topic, [(partition, offset, FETCH_BYTES)])]))
                ((_, (answer,)),) = response.topics
                if answer[1]:
                    raise for_code(answer[1])(f"fetching {topic}[{partition}] at {offset}")
                highwater, records = answer[2], MemoryRecords(answer[-1] or b"")
                start = offset
                while (batch := records.next_batch()) is not None:
                    if batch.next_offset > offset:  # a fetch may begin inside a batch
                        count = 0 if batch.is_control_batch else sum(1 for _ in batch)
                        if count:
                            sizes.append(count)
                        offset = batch.next_offset
                if offset >= highwater:
                    break
                if offset == start:
                    raise RuntimeError(f"{topic}[{partition}] read to {offset} of {highwater}")
    finally:
        await client.close()
    return shape


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer.topics()  # refreshes metadata
    return consumer.partitions_for_topic(topic) or {0}
