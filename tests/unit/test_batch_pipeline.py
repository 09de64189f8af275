"""How a consumer's batches follow each other (`eventcore.stream.BatchPipeline`): the next batch
is read while the one before applies, but applied only after that one's transaction, and its
offsets committed only after that one's; a batch that fails is retried before anything after
it; offsets are each batch's own.

A consumer that records what it is asked to do and a Kafka consumer that records its commits
stand in for the real ones: the order of those calls is the behaviour under test. (On a real
broker and PostgreSQL: tests/integration/test_batch_pipeline.py.)"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from eventcore.stream import BatchPipeline

TOPIC = "t"


@dataclass
class Record:
    partition: int
    offset: int
    topic: str = TOPIC
    key: bytes = b"k"
    value: bytes = b"{}"
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class Batch:
    """What `IdempotentConsumer.prepare` returns, as far as the pipeline is concerned."""

    name: str
    messages: list[Any]
    finished: int = 0

    def finish(self) -> None:
        self.finished += 1


@dataclass
class Consumer:
    """Logs each step; `apply` of a batch waits for its gate (if one is set) and raises as many
    times as `failures` says."""

    name: str = "test"
    log: list[str] = field(default_factory=list)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    async def prepare(self, messages: list[Any]) -> Batch:
        name = f"b{messages[0].offset}"
        self.log.append(f"prepare {name}")
        await asyncio.sleep(0)
        return Batch(name, messages)

    async def apply(self, batch: Batch) -> list[Any]:
        self.log.append(f"apply {batch.name}")
        if batch.name in self.gates:
            await self.gates[batch.name].wait()
        if self.failures.get(batch.name, 0) > 0:
            self.failures[batch.name] -= 1
            self.log.append(f"failed {batch.name}")
            raise RuntimeError("a dead letter could not be sent")
        self.log.append(f"applied {batch.name}")
        return []


@dataclass
class Kafka:
    """The aiokafka consumer's side: which partitions are assigned, and each commit."""

    log: list[str]
    assigned: set[TopicPartition] = field(
        default_factory=lambda: {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)})
    refuse: int = 0
    #: When set, a commit is answered only once this is set (logged as "committing" before).
    answer: asyncio.Event | None = None

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise CommitFailedError("the group has rebalanced")
        named = " ".join(f"{tp.partition}:{o.offset}" for tp, o in sorted(offsets.items()))
        if self.answer is not None:
            self.log.append(f"committing {named}")
            await self.answer.wait()
        self.log.append(f"commit {named}")


@dataclass
class Message:
    raw_message: tuple[Record, ...]
    consumer: Kafka
    #: FastStream's ack commits the consumer's positions unless this is set.
    committed: Any = None


def setup() -> tuple[BatchPipeline, Consumer, Kafka]:
    consumer = Consumer()
    pipeline = BatchPipeline(consumer)  # type: ignore[arg-type]
    return pipeline, consumer, Kafka(consumer.log)


def kept(consumer: Consumer) -> list[Batch]:
    """Every batch `consumer` prepares from now on, in order."""
    batches: list[Batch] = []
    prepare = consumer.prepare

    async def keep(messages: list[Any]) -> Batch:
        batches.append(await prepare(messages))
        return batches[-1]

    consumer.prepare = keep  # type: ignore[method-assign]
    return batches


def message(kafka: Kafka, *records: tuple[int, int]) -> Any:  # stands in for a KafkaMessage
    return Message(tuple(Record(p, o) for p, o in records), kafka)


async def test_the_next_batch_is_read_while_one_applies_and_applied_after_it() -> None:
    pipeline, consumer, kafka = setup()
    consumer.gates["b0"] = gate = asyncio.Event()
    await pipeline.on_batch(message(kafka, (0, 0), (0, 1)))  # returns with b0 applying
    second = asyncio.create_task(pipeline.on_batch(message(kafka, (0, 2), (0, 3))))
    await asyncio.sleep(0.05)
    assert consumer.log == ["prepare b0", "apply b0", "prepare b2"]  # b2 read, not applied
    gate.set()
    await second
    await pipeline.drain()
    assert consumer.log == ["prepare b0", "apply b0", "prepare b2", "applied b0",
                            "commit 0:2", "apply b2", "applied b2", "commit 0:4"]


async def test_each_batch_commits_its_own_offsets_the_one_after_its_last_record() -> None:
    pipeline, consumer, kafka = setup()
    await pipeline.on_batch(message(kafka, (0, 5), (1, 7), (0, 6), (1, 9)))
    await pipeline.drain()
    assert consumer.log[-1] == "commit 0:7 1:10"


async def test_a_batch_that_fails_is_retried_before_the_next_and_committed_after(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(BatchPipeline, "RETRY_S", (0.01, 0.02))
    pipeline, consumer, kafka = setup()
    consumer.failures["b0"] = 3
    first = message(kafka, (0, 0))
    await pipeline.on_batch(first)
    await pipeline.on_batch(message(kafka, (0, 1)))
    await pipeline.drain()
    applying = [line for line in consumer.log if not line.startswith("prepare")]
    assert applying == ["apply b0", "failed b0"] * 3 + [
        "apply b0", "applied b0", "commit 0:1", "apply b1", "applied b1", "commit 0:2"]
    assert caplog.text.count("failed to apply (RuntimeError") == 3
    assert "could not be sent" not in caplog.text  # errors are named, never quoted


async def test_a_refused_commit_is_logged_and_the_next_batch_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline, consumer, kafka = setup()
    kafka.refuse = 1
    with caplog.at_level(logging.WARNING):
        await pipeline.on_batch(message(kafka, (0, 0)))
        await pipeline.on_batch(message(kafka, (0, 1)))
        await pipeline.drain()
    assert "offsets not committed (CommitFailedError" in caplog.text
    assert consumer.log[-3:] == ["apply b1", "applied b1", "commit 0:2"]


async def test_the_next_batch_applies_while_the_offsets_before_it_are_committed() -> None:
    """A batch's transaction waits for the one before it, not for the broker to answer that
    one's offset commit; its own commit waits for that answer, so offsets never go back."""
    pipeline, consumer, kafka = setup()
    kafka.answer = answer = asyncio.Event()
    await pipeline.on_batch(message(kafka, (0, 0)))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(pipeline.on_batch(message(kafka, (0, 1))), 2)
    await asyncio.sleep(0.05)
    assert consumer.log == ["prepare b0", "apply b0", "applied b0", "committing 0:1",
                            "prepare b1", "apply b1", "applied b1"]
    answer.set()
    await pipeline.drain()
    assert consumer.log[-3:] == ["commit 0:1", "committing 0:2", "commit 0:2"]


async def test_while_the_broker_does_not_answer_no_more_batches_pile_up() -> None:
    """One batch committing and one applied: the third waits for the first commit's answer."""
    pipeline, consumer, kafka = setup()
    kafka.answer = answer = asyncio.Event()
    await pipeline.on_batch(message(kafka, (0, 0)))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(pipeline.on_batch(message(kafka, (0, 1))), 2)
    third = asyncio.create_task(pipeline.on_batch(message(kafka, (0, 2))))
    await asyncio.sleep(0.05)
    assert not third.done() and "apply b2" not in consumer.log
    answer.set()
    await third
    await pipeline.drain()
    log = consumer.log
    assert log.index("commit 0:1") < log.index("apply b2")
    assert [line for line in log if line.startswith("commit ")] == [
        "commit 0:1", "commit 0:2", "commit 0:3"]


async def test_stopping_cancels_every_batch_in_flight_that_does_not_finish_in_time() -> None:
    pipeline, consumer, kafka = setup()
    batches = kept(consumer)
    kafka.answer = asyncio.Event()  # never answered: b0 stays committing
    consumer.gates["b1"] = asyncio.Event()  # never set: b1 stays applying
    await pipeline.on_batch(message(kafka, (0, 0)))
    await asyncio.sleep(0.05)
    await pipeline.on_batch(message(kafka, (0, 1)))
    await pipeline.stop(timeout_s=0.05)
    assert consumer.log == ["prepare b0", "apply b0", "applied b0", "committing 0:1",
                            "prepare b1", "apply b1"]
    assert [b.finished for b in batches] == [1, 1]
    await pipeline.drain()  # nothing left in flight


async def test_offsets_of_partitions_revoked_meanwhile_are_not_committed() -> None:
    pipeline, consumer, kafka = setup()
    kafka.assigned = {TopicPartition(TOPIC, 1)}
    await pipeline.on_batch(message(kafka, (0, 0), (1, 3)))
    await pipeline.drain()
    assert consumer.log[-1] == "commit 1:4"
    kafka.assigned = set()
    await pipeline.on_batch(message(kafka, (0, 1)))
    await pipeline.drain()
    assert consumer.log[-1] == "applied b1"  # nothing of its own left to commit


async def test_a_rebalance_waits_for_the_batch_in_flight_to_commit() -> None:
    pipeline, consumer, kafka = setup()
    consumer.gates["b0"] = gate = asyncio.Event()
    await pipeline.on_batch(message(kafka, (0, 0)))
    revoking = asyncio.create_task(
        pipeline.on_partitions_revoked({TopicPartition(TOPIC, 0)}))
    await asyncio.sleep(0.05)
    assert not revoking.done()
    gate.set()
    await revoking
    assert consumer.log[-1] == "commit 0:1"


async def test_a_batch_read_before_a_rebalance_is_left_to_the_partitions_next_reader() -> None:
    pipeline, consumer, kafka = setup()
    consumer.gates["b0"] = first = asyncio.Event()
    await pipeline.on_batch(message(kafka, (0, 0)))
    read = message(kafka, (0, 1))
    reading = asyncio.create_task(pipeline.on_batch(read))
    await asyncio.sleep(0.05)  # b1 read, waiting for b0
    revoking = asyncio.create_task(
        pipeline.on_partitions_revoked({TopicPartition(TOPIC, 0)}))
    await asyncio.sleep(0.05)
    first.set()
    await asyncio.gather(revoking, reading)
    await pipeline.on_batch(message(kafka, (0, 1)))  # read again after the rebalance
    await pipeline.drain()
    assert consumer.log == ["prepare b0", "apply b0", "prepare b1", "applied b0", "commit 0:1",
                            "prepare b1", "apply b1", "applied b1", "commit 0:2"]
    assert read.committed is not None  # FastStream's own ack (all that was fetched) is spent


async def test_a_rebalance_waits_only_so_long_for_a_batch_that_does_not_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(BatchPipeline, "REVOKE_WAIT_S", 0.05)
    pipeline, consumer, kafka = setup()
    consumer.gates["b0"] = gate = asyncio.Event()
    await pipeline.on_batch(message(kafka, (0, 0)))
    await pipeline.on_partitions_revoked({TopicPartition(TOPIC, 0)})
    assert consumer.log[-1] == "apply b0"  # the rebalance went on; the batch still applies
    gate.set()
    await pipeline.drain()
    assert consumer.log[-1] == "commit 0:1"


async def test_stopping_waits_for_the_batch_in_flight_and_applies_nothing_after() -> None:
    pipeline, consumer, kafka = setup()
    consumer.gates["b0"] = gate = asyncio.Event()
    await pipeline.on_batch(message(kafka, (0, 0)))
    late = asyncio.create_task(pipeline.on_batch(message(kafka, (0, 1))))
    stopping = asyncio.create_task(pipeline.stop(timeout_s=5))
    await asyncio.sleep(0.05)
    assert not stopping.done()
    gate.set()
    await asyncio.gather(stopping, late)
    assert consumer.log == ["prepare b0", "apply b0", "prepare b1", "applied b0", "commit 0:1"]


async def test_stopping_cancels_a_batch_that_does_not_finish_in_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline, consumer, kafka = setup()
    consumer.gates["b0"] = asyncio.Event()  # never set
    first = message(kafka, (0, 0))
    await pipeline.on_batch(first)
    await pipeline.stop(timeout_s=0.05)
    assert consumer.log == ["prepare b0", "apply b0"]  # neither applied nor committed
    assert "did not finish in 0 s; cancelled" in caplog.text


async def test_every_batch_s_spans_are_ended_once_applied_or_not() -> None:
    pipeline, consumer, kafka = setup()
    batches = kept(consumer)
    await pipeline.on_batch(message(kafka, (0, 0)))
    await pipeline.on_batch(message(kafka, (0, 1)))
    await pipeline.stop(timeout_s=5)
    await pipeline.on_batch(message(kafka, (0, 2)))  # after stopping: read, then abandoned
    assert [b.finished for b in batches] == [1, 1, 1]
    assert "apply b2" not in consumer.log
