"""The event store under concurrent writers, with the relay tailing it, on real PostgreSQL + broker."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter, defaultdict

import pytest

from contracts import parse_event, verify_chain
from eventcore.db import create_pool
from eventcore.embedded import StackEndpoints
from eventcore.messaging import make_producer
from eventcore.relay import OutboxRelay
from eventcore.settings import CoreSettings
from eventcore.store import FIRST_FREE_PARAM, ConcurrencyError, EventStore, numbered_from
from tests.integration.relay_reader import read_published
from tests.integration.store_kit import SOURCE, TOPICS, consent_draft, core_schema, new_subject

pytestmark = pytest.mark.integration


async def test_concurrent_writers_one_winner_per_version_and_the_relay_skips_nothing(
    endpoints: StackEndpoints, database_url: str
) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema, max_size=24)
    store = EventStore(SOURCE)
    producer = make_producer(CoreSettings(kafka_enable_idempotence=False),
                             endpoints.kafka_bootstrap_servers, "store-test")
    await producer.start()
    relay = OutboxRelay(database_url=database_url, pool=pool, store=store, producer=producer,
                        topics=TOPICS, batch_size=7, poll_interval_s=0.05, name=f"{schema}-relay")
    relay_task = asyncio.create_task(relay.run())
    subjects = [new_subject() for _ in range(4)]
    versions_per_subject, writers_per_subject = 12, 4
    outcomes: Counter[str] = Counter()
    winners: dict[tuple[str, int], int] = defaultdict(int)
    rng = random.Random(11)

    async def writer(subject: str) -> None:
        while True:
            async with pool.acquire() as conn:
                current = len(await store.load_subject(conn, subject))
                if current >= versions_per_subject:
                    return
                try:
                    async with conn.transaction():
                        await store.append(conn, [consent_draft(subject, current + 1)])
                        await asyncio.sleep(rng.random() * 0.01)  # a random commit delay
                except ConcurrencyError:
                    outcomes["conflict"] += 1
                    continue
                outcomes["won"] += 1
                winners[(subject, current + 1)] += 1

    try:
        await asyncio.wait_for(asyncio.gather(
            *(writer(s) for s in subjects for _ in range(writers_per_subject))), 120)
        total = len(subjects) * versions_per_subject
        assert outcomes["won"] == total
        assert outcomes["conflict"] > 0, "the test must actually produce contention"
        assert set(winners.values()) == {1} and len(winners) == total

        async with pool.acquire() as conn:
            stored = await store.read_after(conn, 0, 10_000)
        assert [e.sequence for e in stored] == list(range(1, total + 1))
        assert verify_chain(parse_event(json.dumps(e.envelope)) for e in stored) is None

        published = await read_published(endpoints, {e.event_id for e in stored})
        assert sorted(Counter(e.sequence for e in published).items()) == [
            (s, 1) for s in range(1, total + 1)]
        by_subject: dict[str, list[int]] = defaultdict(list)
        for event in published:
            by_subject[event.subject].append(event.subjectversion)
        assert all(v == sorted(v) for v in by_subject.values()), "per-key order kept"
    finally:
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
        await producer.stop()
        await pool.close()


async def test_a_stale_expected_version_is_a_concurrency_error(database_url: str) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema)
    store, subject = EventStore(SOURCE), new_subject()
    try:
        async with pool.acquire() as conn:
            await store.append(conn, [consent_draft(subject, 1)])
            with pytest.raises(ConcurrencyError):
                await store.append(conn, [consent_draft(subject, 1)])
            with pytest.raises(ConcurrencyError):
                await store.append(conn, [consent_draft(subject, 3)])  # not next
            with pytest.raises(ConcurrencyError):  # the batch is atomic
                await store.append(conn, [consent_draft(subject, 2), consent_draft(subject, 2)])
            assert await store.head(conn) == 1
            with pytest.raises(Exception, match="append-only"):
                await conn.execute("UPDATE events SET event_type = 'X'")
    finally:
        await pool.close()


async def test_an_append_with_the_callers_writes_commits_all_or_nothing_in_one_statement(
    database_url: str,
) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema)
    store, subject = EventStore(SOURCE), new_subject()
    # The caller's own write: a row naming the event's sequence, as a read model would.
    writes = numbered_from(FIRST_FREE_PARAM, "noted AS (INSERT INTO noted (sequence, note)"
                                             " SELECT ins.sequence, $1 FROM ins)")
    assert "$9" in writes and "$1 " not in writes
    sent: list[str] = []
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE noted (sequence bigint PRIMARY KEY, note text)")
            conn.add_query_logger(lambda logged: sent.append(str(logged.query)))
            first = await store.append_with(conn, consent_draft(subject, 1), writes,
                                            lambda body: [body["subject"]])
            await asyncio.sleep(0.01)  # query loggers are called soon after, not during
            assert len(sent) == 1 and not conn.is_in_transaction()  # one statement, no BEGIN
            assert await conn.fetch("SELECT sequence, note FROM noted") == [(1, subject)]
            # A conflict (version 3 does not follow 1) writes neither the event nor the row.
            with pytest.raises(ConcurrencyError):
                await store.append_with(conn, consent_draft(subject, 3), writes,
                                        lambda body: ["never"])
            # A failing write (the row is already there) takes the event with it.
            await conn.execute("INSERT INTO noted VALUES (2, 'taken')")
            with pytest.raises(Exception, match="noted_pkey"):
                await store.append_with(conn, consent_draft(subject, 2), writes,
                                        lambda body: ["clash"])
            assert await store.head(conn) == 1
            assert await conn.fetchval("SELECT count(*) FROM noted") == 2
            # The chain goes on from where it was: the next append links to the first.
            second = await store.append_with(conn, consent_draft(subject, 2), "n AS (SELECT 1)",
                                             lambda body: [])
            assert (second.sequence, second.prevhash) == (2, first.hash)
            events = [parse_event(json.dumps(r.envelope))
                      for r in await store.read_after(conn, 0, 10)]
            assert verify_chain(events) is None
    finally:
        await pool.close()
