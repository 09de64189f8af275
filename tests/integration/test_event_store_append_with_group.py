"""`EventStore.append_with` outside a transaction, on real PostgreSQL: callers of one statement
share a group commit (one pipelined round trip, one transaction), each gets its own record or
its own error, and nothing is ever half-written (docs/performance.md, finding 100)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from eventcore.db import create_pool
from eventcore.metrics import CoreMetrics
from eventcore.store import (
    FIRST_FREE_PARAM,
    ConcurrencyError,
    EventStore,
    RecordedEvent,
    numbered_from,
)
from tests.integration.store_kit import (
    SOURCE,
    cancel_callers,
    consent_draft,
    core_schema,
    new_subject,
)
from tests.integration.test_event_store_batch import assert_chain_holds

pytestmark = pytest.mark.integration

# The caller's own write, as a read model would make it: a row naming the event's sequence.
NOTED = numbered_from(FIRST_FREE_PARAM, "noted AS (INSERT INTO noted (sequence, note)"
                                        " SELECT ins.sequence, $1 FROM ins)")


class _RollBack(Exception):
    pass


async def _setup(database_url: str, metrics: CoreMetrics | None = None
                 ) -> tuple[asyncpg.Pool, EventStore]:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema, max_size=24)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE noted (sequence bigint PRIMARY KEY,"
                           " note text NOT NULL UNIQUE)")
        await conn.execute("INSERT INTO noted VALUES (0, 'clash')")
    return pool, EventStore(SOURCE, metrics)


def _appended(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    assert data is not None
    return sum(int(point.value) for rm in data.resource_metrics for sm in rm.scope_metrics
               for metric in sm.metrics if metric.name == "gt_events_appended"
               for point in metric.data.data_points if isinstance(point, NumberDataPoint))


def _caller(pool: asyncpg.Pool, store: EventStore) -> Any:
    async def one(draft: Any, note: object) -> RecordedEvent | Exception:
        async with pool.acquire() as conn:
            try:
                return await store.append_with(conn, draft, NOTED, lambda body: [note])
            except Exception as exc:  # noqa: BLE001 - each caller's outcome is checked
                return exc
    return one


async def _assert_whole(pool: asyncpg.Pool, store: EventStore) -> list[RecordedEvent]:
    """Gapless and chained, every event with its row and every row with its event."""
    async with pool.acquire() as conn:
        stored = await assert_chain_holds(conn, store)
        notes = dict(await conn.fetch("SELECT sequence, note FROM noted WHERE sequence > 0"))
    assert sorted(notes) == [e.sequence for e in stored]
    return stored


async def _transactions(pool: asyncpg.Pool, sequences: list[int]) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(DISTINCT xmin::text::bigint) FROM events"
                                       " WHERE sequence = ANY($1::bigint[])", sequences))


async def test_conflicts_in_a_group_stay_with_their_callers_and_the_group_commits(
        database_url: str) -> None:
    """A version that does not follow (the statement writes nothing for it) and two callers
    wanting one new subject's version 1 (one of them refused by the unique key, which undoes
    the group; it is sent again without that caller): each refused caller gets its
    ConcurrencyError, and everyone else lands in a few transactions, each with its own row."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    pool, store = await _setup(database_url, CoreMetrics(meter, SOURCE))
    one = _caller(pool, store)
    taken, twice = new_subject(), new_subject()
    try:
        assert isinstance(await one(consent_draft(taken, 1), "first"), RecordedEvent)
        calls: list[tuple[Any, str]] = [(consent_draft(new_subject(), 1), f"n{n}")
                                        for n in range(24)]
        calls.insert(4, (consent_draft(taken, 3), "gap"))  # version 2 is not there
        calls.insert(9, (consent_draft(twice, 1), "twice-a"))
        calls.insert(17, (consent_draft(twice, 1), "twice-b"))
        outcomes = await asyncio.gather(*(one(d, note) for d, note in calls))
        assert isinstance(outcomes[4], ConcurrencyError)
        assert (outcomes[4].subject, outcomes[4].version) == (taken, 3)
        pair = [outcomes[9], outcomes[17]]
        assert sorted(type(o).__name__ for o in pair) == ["BatchConflict", "RecordedEvent"]
        landed: dict[int, str] = {}
        for n, ((draft, note), outcome) in enumerate(zip(calls, outcomes, strict=True)):
            if isinstance(outcome, RecordedEvent):
                assert (outcome.event_id, outcome.subject) == (draft.id, draft.subject)
                landed[outcome.sequence] = note
            else:
                assert n in (4, 9, 17), outcome
        stored = await _assert_whole(pool, store)
        assert len(stored) == 1 + 24 + 1
        async with pool.acquire() as conn:
            notes = dict(await conn.fetch("SELECT sequence, note FROM noted WHERE sequence > 1"))
        assert notes == landed  # each caller's row names its own event
        assert _appended(reader) == len(stored)  # the refused are not counted
        assert await _transactions(pool, sorted(landed)) < 12, "the callers were grouped"
    finally:
        await pool.close()


async def test_a_callers_failing_write_or_bad_argument_is_its_own(database_url: str) -> None:
    """A write that fails in the database (a unique note) and an argument that cannot be sent
    (a number for a text): the group is undone and sent again caller by caller, so only those
    two callers fail, and the others land once each."""
    pool, store = await _setup(database_url)
    one = _caller(pool, store)
    try:
        for round_ in range(2):
            calls: list[tuple[Any, object]] = [(consent_draft(new_subject(), 1), f"r{round_}-{n}")
                                               for n in range(20)]
            calls.insert(5, (consent_draft(new_subject(), 1), "clash"))
            calls.insert(11, (consent_draft(new_subject(), 1), 12345))
            outcomes = await asyncio.gather(*(one(d, note) for d, note in calls))
            assert isinstance(outcomes[5], asyncpg.UniqueViolationError)
            assert outcomes[5].constraint_name == "noted_note_key"
            assert isinstance(outcomes[11], asyncpg.DataError)  # names the argument: $9
            assert "$9" in str(outcomes[11])
            assert all(isinstance(o, RecordedEvent)
                       for n, o in enumerate(outcomes) if n not in (5, 11))
        stored = await _assert_whole(pool, store)
        assert len(stored) == 2 * 20
    finally:
        await pool.close()


async def test_grouped_calls_beside_transactions_and_another_store_keep_the_chain(
        database_url: str) -> None:
    """Grouped calls, the same in callers' transactions (some rolled back), and a second store
    (another process) at once: gapless, chained, every row with its event and its caller."""
    pool, _ = await _setup(database_url)
    stores = [EventStore(SOURCE), EventStore(SOURCE)]

    async def one(n: int) -> RecordedEvent | None:
        store, draft = stores[n % 2], consent_draft(new_subject(), 1)
        async with pool.acquire() as conn:
            if n % 5:
                return await store.append_with(conn, draft, NOTED, lambda b: [str(n)])
            try:
                async with conn.transaction():
                    await store.append_with(conn, draft, NOTED, lambda b: [str(n)])
                    if n % 10 == 0:
                        raise _RollBack
                    return None
            except _RollBack:
                return None
    try:
        outcomes = await asyncio.gather(*(one(n) for n in range(120)))
        stored = await _assert_whole(pool, stores[0])
        assert len(stored) == 120 - 12  # the rolled-back ones are not there
        async with pool.acquire() as conn:
            notes = dict(await conn.fetch("SELECT sequence, note FROM noted WHERE sequence > 0"))
        for n, outcome in enumerate(outcomes):
            if outcome is not None:
                assert notes[outcome.sequence] == str(n)
        grouped = [o.sequence for o in outcomes if o is not None]
        assert await _transactions(pool, grouped) < len(grouped) / 2, "grouped"
    finally:
        await pool.close()


async def test_cancelled_callers_never_stall_the_group(database_url: str) -> None:
    pool, store = await _setup(database_url)
    returned: list[RecordedEvent] = []

    async def one() -> None:
        async with pool.acquire() as conn:
            returned.append(await store.append_with(conn, consent_draft(new_subject(), 1),
                                                    NOTED, lambda b: [b["id"]]))
    try:
        await cancel_callers(one)
        stored = await _assert_whole(pool, store)
        # Every result a caller got is stored; a cancelled caller's event may be stored or not.
        assert {e.event_id for e in returned} <= {e.event_id for e in stored}
        assert len(returned) >= 10 * 8 + 1
    finally:
        await pool.close()
