"""The embedded stack starts a working broker and PostgreSQL, survives restarts, leaves nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import psutil
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from eventcore.embedded import (
    EmbeddedStack,
    StackControlError,
    StackEndpoints,
    StackStartError,
    create_topics,
)
from eventcore.embedded.broker import TansuBroker
from eventcore.embedded.topics import existing_topics
from eventcore.settings import CoreSettings

pytestmark = pytest.mark.integration

PARTITIONS = 2
STACK_TOPIC = f"test.stack-{uuid.uuid4().hex[:8]}.v1"
REPO = Path(__file__).resolve().parents[2]


def embedded_settings(**overrides: object) -> CoreSettings:
    # Explicit None beats any GT_ variables in the environment: these tests need own children.
    values: dict[str, object] = {
        "kafka_bootstrap_servers": None,
        "database_url": None,
        "topic_partitions": PARTITIONS,
    }
    values.update(overrides)
    return CoreSettings(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module")
async def stack() -> AsyncIterator[EmbeddedStack]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("GT_INFRA", raising=False)
        running = EmbeddedStack(embedded_settings(), topics=[STACK_TOPIC])
        async with running:
            yield running


def topic_name() -> str:
    return f"test.embedded-{uuid.uuid4().hex[:8]}.v1"


def gone(pid: int) -> bool:
    # A zombie has exited; only its parent's bookkeeping remains.
    try:
        status: str = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return True
    return bool(status == psutil.STATUS_ZOMBIE)


async def produce(endpoints: StackEndpoints, topic: str, value: bytes, partition: int = 0) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=endpoints.kafka_enable_idempotence,
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k", partition=partition)
    finally:
        await producer.stop()


async def consume_one(
    endpoints: StackEndpoints, topic: str, *, group: str | None = None, partition: int = 0
) -> bytes:
    # assign() rather than subscribe(): a group join costs ~5 s on Tansu; the group id still
    # lets offsets be committed and resumed.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=endpoints.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, partition)])
        record = await asyncio.wait_for(consumer.getone(), timeout=10)
        if group is not None:
            await consumer.commit()
        value: bytes = record.value
        return value
    finally:
        await consumer.stop()


async def topics_on(bootstrap_servers: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def test_endpoints_describe_the_embedded_broker_and_database(stack: EmbeddedStack) -> None:
    endpoints = stack.endpoints
    assert endpoints.kafka_bootstrap_servers.startswith("127.0.0.1:")
    assert endpoints.database_url.startswith("postgresql://postgres@127.0.0.1:")
    assert endpoints.database_url.endswith("/golden_thread")
    assert endpoints.as_env()["GT_KAFKA_ENABLE_IDEMPOTENCE"] == "false"
    assert endpoints.as_env()["GT_KAFKA_FETCH_MAX_WAIT_MS"] == "10"
    assert STACK_TOPIC in await topics_on(endpoints.kafka_bootstrap_servers)


async def test_a_message_produced_with_acks_all_is_consumed(stack: EmbeddedStack) -> None:
    topic = topic_name()
    await create_topics(stack.endpoints.kafka_bootstrap_servers, [topic], partitions=PARTITIONS)
    await create_topics(stack.endpoints.kafka_bootstrap_servers, [topic], partitions=PARTITIONS)

    await produce(stack.endpoints, topic, b"first", partition=1)
    await produce(stack.endpoints, topic, b"second", partition=1)
    group = f"test-group-{uuid.uuid4().hex[:8]}"

    assert await consume_one(stack.endpoints, topic, group=group, partition=1) == b"first"
    # The committed offset survives the consumer: the next one resumes after it.
    assert await consume_one(stack.endpoints, topic, group=group, partition=1) == b"second"


async def test_the_database_answers_queries(stack: EmbeddedStack) -> None:
    conn = await asyncpg.connect(stack.endpoints.database_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == "golden_thread"
        assert await conn.fetchval("SELECT 40 + 2") == 42
    finally:
        await conn.close()


async def test_a_table_survives_a_database_restart(stack: EmbeddedStack) -> None:
    table = f"survivor_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(stack.endpoints.database_url, min_size=1, max_size=2)
    try:
        await pool.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        await pool.execute(f"INSERT INTO {table} VALUES (7)")

        await stack.restart_database()

        conn = await asyncpg.connect(stack.endpoints.database_url)
        try:
            assert await conn.fetchval(f"SELECT id FROM {table}") == 7
        finally:
            await conn.close()
        # A pool opened before the restart replaces its broken connections.
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 1
    finally:
        await pool.close()


async def test_a_stopped_database_refuses_then_serves_again(stack: EmbeddedStack) -> None:
    await stack.stop_database()
    try:
        with pytest.raises(OSError):
            await asyncpg.connect(stack.endpoints.database_url, timeout=2)
    finally:
        await stack.start_database()
    conn = await asyncpg.connect(stack.endpoints.database_url)
    await conn.close()


async def test_a_restarted_broker_answers_on_the_same_port_with_its_topics(
    stack: EmbeddedStack,
) -> None:
    before = stack.endpoints.kafka_bootstrap_servers
    ad_hoc = topic_name()
    await create_topics(before, [ad_hoc], partitions=1)

    await stack.restart_broker()

    assert stack.endpoints.kafka_bootstrap_servers == before
    topics = await existing_topics(before)
    assert topics[STACK_TOPIC] == PARTITIONS
    assert topics[ad_hoc] == 1
    await produce(stack.endpoints, STACK_TOPIC, b"after restart")
    assert await consume_one(stack.endpoints, STACK_TOPIC) == b"after restart"


async def test_a_topic_a_client_recreates_first_after_a_restart_gets_its_own_count_back(
    stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tansu creates a topic a client asks about with 4 partitions. A client asking in the moment
    after the broker comes back, before the stack re-creates its topics, must not leave a topic
    with another partition count than the consumers know."""
    servers = stack.endpoints.kafka_bootstrap_servers
    broker = stack._broker
    assert broker is not None
    restart = broker.crash_and_restart

    async def restart_then_a_client_asks() -> None:
        await restart()
        client = AIOKafkaProducer(bootstrap_servers=servers)
        await client.start()
        try:
            assert len(await client.partitions_for(STACK_TOPIC)) == 4  # Tansu's own count
        finally:
            await client.stop()

    monkeypatch.setattr(broker, "crash_and_restart", restart_then_a_client_asks)
    await stack.restart_broker()

    assert (await existing_topics(servers))[STACK_TOPIC] == PARTITIONS
    await produce(stack.endpoints, STACK_TOPIC, b"after the repair")
    assert await consume_one(stack.endpoints, STACK_TOPIC) == b"after the repair"


async def test_servers_named_by_settings_are_used_and_nothing_is_started(
    stack: EmbeddedStack,
) -> None:
    running = stack.endpoints
    topic = topic_name()
    settings = embedded_settings(
        kafka_bootstrap_servers=running.kafka_bootstrap_servers,
        database_url=running.database_url,
        kafka_enable_idempotence=False,
    )
    external = EmbeddedStack(settings, topics=[topic])
    async with external as endpoints:
        assert external.child_pids() == []
        assert external.work_dir is None
        assert endpoints.kafka_bootstrap_servers == running.kafka_bootstrap_servers
        assert endpoints.database_url == running.database_url
        assert endpoints.kafka_fetch_max_wait_ms == settings.kafka_fetch_max_wait_ms
        assert topic in await topics_on(endpoints.kafka_bootstrap_servers)
        with pytest.raises(StackControlError):
            await external.restart_broker()
        with pytest.raises(StackControlError):
            await external.restart_database()
    # Leaving the external stack leaves the servers it was given running.
    conn = await asyncpg.connect(running.database_url)
    await conn.close()


async def test_children_are_gone_and_the_work_dir_removed_after_exit() -> None:
    stack = EmbeddedStack(embedded_settings())
    async with stack:
        pids = stack.child_pids()
        work_dir = stack.work_dir
        assert len(pids) == 2
        assert work_dir is not None and (work_dir / "pgdata").is_dir()
        descendants = [p.pid for p in psutil.Process().children(recursive=True)]
        assert set(pids) <= set(descendants)
    assert all(gone(pid) for pid in pids)
    assert not work_dir.exists()


async def test_a_broker_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    occupied = TansuBroker(tmp_path)
    await occupied.start()
    try:
        clashing = TansuBroker(tmp_path, port=occupied.port)
        with pytest.raises(StackStartError, match="(?i)address.*in use"):
            await clashing.start()
        assert not clashing.process.running
    finally:
        await occupied.stop()


async def test_stack_up_prints_exports_serves_and_stops_on_sigint() -> None:
    topic = topic_name()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    script = "from golden_thread.stack_cli import stack_app; stack_app()"
    argv = ["-c", script, "up", "--topic", topic, "--no-default-topics"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    exports: dict[str, str] = {}
    try:
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
            assert line, "stack up exited before it was running"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if line.startswith("# running"):
                break
        endpoints = StackEndpoints(
            kafka_bootstrap_servers=exports["GT_KAFKA_BOOTSTRAP_SERVERS"],
            database_url=exports["GT_DATABASE_URL"],
            kafka_enable_idempotence=exports["GT_KAFKA_ENABLE_IDEMPOTENCE"] == "true",
            kafka_fetch_max_wait_ms=int(exports["GT_KAFKA_FETCH_MAX_WAIT_MS"]),
        )
        assert topic in await topics_on(endpoints.kafka_bootstrap_servers)
        conn = await asyncpg.connect(endpoints.database_url)
        await conn.close()
        children = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(children) >= 2  # the broker, the postmaster and its helpers

        proc.send_signal(signal.SIGINT)
        rest = (await asyncio.wait_for(proc.stdout.read(), timeout=30)).decode()
        assert await proc.wait() == 0
        assert "stopped" in rest
        assert all(gone(pid) for pid in children)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
