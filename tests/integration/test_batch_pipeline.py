"""A consumer's batches on a real broker and PostgreSQL (`eventcore.stream.BatchPipeline`): the
next batch is read while one applies, yet each applies only after the one before has committed,
and a stopping service commits the offsets of the batch it is applying."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import GENESIS_HASH, body_digest, chain_hash
from eventcore.consumer import DomainRejection
from eventcore.db import migrate
from eventcore.embedded import StackEndpoints, create_topics
from eventcore.runtime import ServiceRuntime, Subscription
from eventcore.settings import CoreSettings
from golden_thread.faults.kafka import lag
from tests.conftest import core_values, create_database
from tests.integration.store_kit import consent_draft, new_subject

pytestmark = pytest.mark.integration
TOPIC, CONSUMER = "pipelinetest.events.v1", "pipelinetest"
#: Small batches, so that a backlog of a few hundred events is many of them.
BATCH = 7
#: A version whose handler waits until the test lets it go.
HELD = 500


class Held:
    """The handler of version HELD says it has started, then waits for `go`."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        #: (subject, version) of each event that found its previous version not applied.
        self.early: list[tuple[str, int]] = []


@dataclass
class Service:
    runtime: ServiceRuntime
    held: Held
    database_url: str
    stopped: bool = False


async def follow(conn: asyncpg.Connection, event: Any, held: Held) -> None:
    """Record the effect, refusing a version whose previous one is not visible: a batch applied
    before the one holding that version had committed would be refused (dead-lettered)."""
    version = event.subjectversion
    if version == HELD:
        held.started.set()
        await held.go.wait()
    if version > 1 and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM effects WHERE subject = $1 AND version = $2)",
            event.subject, version - 1):
        held.early.append((event.subject, version))  # kept, whatever a retry does after
        raise DomainRejection("the previous version is not applied")
    await conn.execute("INSERT INTO effects (subject, version) VALUES ($1, $2)",
                       event.subject, version)


@pytest.fixture(scope="module")
async def service(endpoints: StackEndpoints) -> AsyncIterator[Service]:
    await create_topics(endpoints.kafka_bootstrap_servers, [TOPIC], partitions=1)
    database_url = await create_database(endpoints)
    await migrate(database_url, "pipelinetest", [], source="priority")
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TABLE pipelinetest.effects (n bigserial, subject text NOT NULL,"
                       " version int NOT NULL, UNIQUE (subject, version))")
    await conn.close()
    settings = CoreSettings(**core_values(endpoints, database_url),  # type: ignore[arg-type]
                            consumer_batch_max_records=BATCH)
    held = Held()

    async def handler(conn: asyncpg.Connection, event: Any) -> None:
        await follow(conn, event, held)

    runtime = ServiceRuntime(
        source="priority", schema="pipelinetest", settings=settings, migrations=[], topics={},
        subscriptions=[Subscription(CONSUMER, [TOPIC], {"ConsentChanged": handler})],
    )
    await runtime.start(relay=False)
    running = Service(runtime, held, database_url)
    try:
        yield running
    finally:
        if not running.stopped:
            await runtime.stop()


def versions(subject: str, first: int, last: int) -> list[bytes]:
    out = []
    for version in range(first, last + 1):
        draft = consent_draft(subject, version)
        event = draft.sequenced(version, GENESIS_HASH,
                                chain_hash(GENESIS_HASH, version, body_digest(draft)))
        out.append(event.model_dump_json().encode())
    return out


async def produce(endpoints: StackEndpoints, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(TOPIC, v, key=b"k") for v in values])
    finally:
        await producer.stop()


async def query(service: Service, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(service.database_url,
                                 server_settings={"search_path": "pipelinetest"})
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def applied(service: Service, subject: str) -> list[int]:
    rows = await query(service, "SELECT version FROM effects WHERE subject = $1 ORDER BY n",
                       subject)
    return [r[0] for r in rows]


async def outcomes(service: Service) -> dict[str, int]:
    rows = await query(service, "SELECT outcome, count(*) FROM inbox WHERE consumer = $1"
                       " GROUP BY outcome", CONSUMER)
    return {r[0]: r[1] for r in rows}


async def until(check: Any, timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_a_backlog_in_many_batches_applies_each_after_the_one_before_committed(
    service: Service, endpoints: StackEndpoints,
) -> None:
    subject = new_subject()
    await produce(endpoints, versions(subject, 1, 300))

    async def all_in() -> bool:
        return sum((await outcomes(service)).values()) >= 300
    await until(all_in)
    assert await outcomes(service) == {"applied": 300}  # none refused, none dead-lettered
    assert service.held.early == []  # no batch applied before the one before it committed
    assert await applied(service, subject) == list(range(1, 301))
    [(transactions,)] = await query(
        service, "SELECT count(DISTINCT processed_at) FROM inbox WHERE consumer = $1", CONSUMER)
    assert transactions >= 300 // BATCH  # batches of at most BATCH, each its own transaction


async def test_a_batch_that_fails_before_it_applies_is_read_again_not_skipped(
    service: Service, endpoints: StackEndpoints, monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = service.runtime.consumers[0]
    prepare, failed = consumer.prepare, []
    subject = new_subject()

    async def failing_once(messages: Any) -> Any:
        if not failed and any(subject.encode() in m.value for m in messages):
            failed.append(len(messages))
            raise RuntimeError("a bug in checking a batch")
        return await prepare(messages)

    monkeypatch.setattr(consumer, "prepare", failing_once)
    await produce(endpoints, versions(subject, 1, 40))

    async def all_in() -> bool:
        return len(await applied(service, subject)) >= 40
    await until(all_in)
    assert failed  # it did fail once
    assert await applied(service, subject) == list(range(1, 41))
    assert service.held.early == []


async def test_stopping_commits_the_offsets_of_the_batch_it_is_applying(
    service: Service, endpoints: StackEndpoints, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(Last in this module: it stops the module's service.) Tansu still takes a commit from a
    consumer that has left its group, where Kafka refuses it, so the order of the two is what
    is checked, besides the committed offsets."""
    calls: list[str] = []
    commit, stop = AIOKafkaConsumer.commit, AIOKafkaConsumer.stop

    async def committing(self: AIOKafkaConsumer, *args: Any) -> None:
        calls.append("commit")
        await commit(self, *args)

    async def stopping_consumer(self: AIOKafkaConsumer) -> None:
        calls.append("stop")
        await stop(self)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", committing)
    monkeypatch.setattr(AIOKafkaConsumer, "stop", stopping_consumer)
    subject = new_subject()
    await produce(endpoints, versions(subject, 1, HELD))
    await asyncio.wait_for(service.held.started.wait(), 60)
    service.stopped = True
    stopping = asyncio.create_task(service.runtime.stop())
    await asyncio.sleep(0.3)
    assert not stopping.done()  # it waits for the batch in flight
    service.held.go.set()
    await asyncio.wait_for(stopping, 30)
    assert await applied(service, subject) == list(range(1, HELD + 1))
    assert calls[-2:] == ["commit", "stop"]  # the batch in flight committed, then the consumer left
    assert await lag(endpoints.kafka_bootstrap_servers, CONSUMER, [TOPIC]) == 0
