"""`EventStore.append_with` with a guard, on real PostgreSQL: the guard locks the callers' rows
before the head, for a whole group at once, and lets through only the callers whose rows still
allow the append; a writer that locks such a row and then appends (as an erasure does) never
deadlocks with a group, and what it changes is what the group's guard sees
(`eventcore/store/guarded.py`)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from eventcore.db import create_pool
from eventcore.store import (
    FIRST_FREE_PARAM,
    ConcurrencyError,
    EventStore,
    Guard,
    GuardRefused,
    RecordedEvent,
    numbered_from,
)
from eventcore.store.batch import BatchConflict, prepare
from eventcore.store.guarded import append_guarded
from eventcore.store.single import with_writes
from tests.integration.store_kit import SOURCE, consent_draft, core_schema, new_subject
from tests.integration.test_event_store_batch import assert_chain_holds

pytestmark = pytest.mark.integration

NOTED = numbered_from(FIRST_FREE_PARAM, "noted AS (INSERT INTO noted (sequence, member_id)"
                                        " SELECT ins.sequence, $1 FROM ins)")
LIVE = ("SELECT member_id FROM members WHERE member_id = ANY($1::text[]) AND NOT gone"
        " ORDER BY member_id FOR UPDATE")


async def _setup(database_url: str) -> tuple[asyncpg.Pool, EventStore]:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema, max_size=24)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE members (member_id text PRIMARY KEY,"
                           " gone boolean NOT NULL DEFAULT false)")
        await conn.execute("CREATE TABLE noted (sequence bigint PRIMARY KEY,"
                           " member_id text CHECK (length(member_id) <= 3))")
        await conn.execute("INSERT INTO members SELECT 'm' || n, n % 4 = 0"
                           " FROM generate_series(1, 12) AS n")
    return pool, EventStore(SOURCE)


def _caller(pool: asyncpg.Pool, store: EventStore) -> Any:
    async def one(draft: Any, member: str) -> RecordedEvent | Exception:
        async with pool.acquire() as conn:
            try:
                return await store.append_with(conn, draft, NOTED, lambda body: [member],
                                               guard=Guard(LIVE, member))
            except Exception as exc:  # noqa: BLE001 - each caller's outcome is checked
                return exc
    return one


async def _noted(pool: asyncpg.Pool, store: EventStore) -> dict[int, str]:
    async with pool.acquire() as conn:
        stored = await assert_chain_holds(conn, store)
        noted = dict(await conn.fetch("SELECT sequence, member_id FROM noted"))
    assert sorted(noted) == [e.sequence for e in stored]
    return noted


async def test_a_group_lets_through_only_live_members_and_keeps_each_outcome_its_own(
        database_url: str) -> None:
    """Callers for live members, gone ones (every fourth), an unknown one, and two wanting one
    new subject's version 1 (one refused by the unique key inside the guarded transaction):
    the refused get GuardRefused or ConcurrencyError, the rest land, each with its own row."""
    pool, store = await _setup(database_url)
    one = _caller(pool, store)
    twice = new_subject()
    calls = [(consent_draft(new_subject(), 1), f"m{1 + n % 12}") for n in range(24)]
    calls += [(consent_draft(new_subject(), 1), "m99"),
              (consent_draft(twice, 1), "m1"), (consent_draft(twice, 1), "m2")]
    try:
        outcomes = await asyncio.gather(*(one(d, m) for d, m in calls))
        landed: dict[int, str] = {}
        for (draft, member), outcome in zip(calls, outcomes, strict=True):
            if member == "m99" or int(member[1:]) % 4 == 0:
                assert isinstance(outcome, GuardRefused) and outcome.key == member, outcome
            elif isinstance(outcome, RecordedEvent):
                assert (outcome.event_id, outcome.subject) == (draft.id, draft.subject)
                landed[outcome.sequence] = member
            else:
                assert isinstance(outcome, ConcurrencyError) and outcome.subject == twice
        assert sum(isinstance(o, ConcurrencyError) for o in outcomes) == 1
        assert len(landed) == 24 - 6 + 1
        assert await _noted(pool, store) == landed
    finally:
        await pool.close()


async def _waiting_on_a_lock(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn:
        return bool(await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND application_name = current_setting('application_name')"))  # this test's pool


async def test_a_held_row_delays_only_its_caller_whose_guard_then_sees_it_gone(
        database_url: str) -> None:
    """As an erasure: a transaction locks a member's row, appends (taking the head), marks it
    gone and commits. Meanwhile the other members' callers go through in their groups (a group
    skips a held row: its caller tries again alone, waiting for it), and the waiting caller's
    guard, rechecking the row once it is free, sees the member gone."""
    pool, store = await _setup(database_url)
    one = _caller(pool, store)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM members WHERE member_id = 'm1' FOR UPDATE")
            held = asyncio.create_task(one(consent_draft(new_subject(), 1), "m1"))
            others = await asyncio.wait_for(asyncio.gather(
                *(one(consent_draft(new_subject(), 1), f"m{n}") for n in (2, 3, 5, 6, 7))), 10)
            assert all(isinstance(o, RecordedEvent) for o in others), others
            for _ in range(200):  # m1's caller waits on the row, alone
                if await _waiting_on_a_lock(pool):
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("no caller waited on the held row")
            assert not held.done()
            erased = await store.append_with(conn, consent_draft(new_subject(), 1), NOTED,
                                             lambda body: ["era"])
            await conn.execute("UPDATE members SET gone = true WHERE member_id = 'm1'")
        outcome = await asyncio.wait_for(held, timeout=10)
        assert isinstance(outcome, GuardRefused) and outcome.key == "m1"
        assert max(o.sequence for o in others if isinstance(o, RecordedEvent)) < erased.sequence
        assert sorted((await _noted(pool, store)).values()) == ["era", "m2", "m3", "m5", "m6",
                                                                "m7"]
    finally:
        await pool.close()


async def test_a_conflict_names_its_caller_and_a_failing_write_stays_with_its_own(
        database_url: str) -> None:
    """A conflict in a guarded group, the guard having refused a caller before it, names the
    conflicting caller's index among all of them (as the group commit's blame expects), and
    nothing is written; a caller whose own write fails (too long a member id for `noted`) gets
    its error in a group, the others land."""
    pool, store = await _setup(database_url)
    twice = new_subject()
    items = [(row, ["m4"], "m4") for row in prepare(SOURCE, [consent_draft(new_subject(), 1)])]
    items += [(row, [m], m) for row, m in zip(
        prepare(SOURCE, [consent_draft(twice, 1), consent_draft(twice, 1)]), ("m1", "m2"),
        strict=True)]
    try:
        async with pool.acquire() as conn:
            with pytest.raises(BatchConflict) as conflict:
                await append_guarded(conn, SOURCE, None, with_writes(NOTED), LIVE, items,
                                     wait=True)
            assert conflict.value.row == 1
            assert await conn.fetchval("SELECT count(*) FROM events") == 0
        async with pool.acquire() as conn:  # live, its id too long for `noted`
            await conn.execute("INSERT INTO members VALUES ('mlong', false)")
        one = _caller(pool, store)
        outcomes = await asyncio.gather(*(one(consent_draft(new_subject(), 1), m)
                                          for m in ("m1", "m2", "mlong", "m3", "m5")))
        assert isinstance(outcomes[2], asyncpg.CheckViolationError), outcomes
        assert all(isinstance(o, RecordedEvent) for n, o in enumerate(outcomes) if n != 2)
        assert sorted((await _noted(pool, store)).values()) == ["m1", "m2", "m3", "m5"]
    finally:
        await pool.close()



async def test_in_a_transaction_or_alone_a_guarded_append_is_all_or_nothing(
        database_url: str) -> None:
    """Inside the caller's transaction the guard and the append take a savepoint of it: a
    refusal leaves the transaction usable, and its rollback takes the append with it."""
    pool, store = await _setup(database_url)
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():
                with pytest.raises(GuardRefused):
                    await store.append_with(conn, consent_draft(new_subject(), 1), NOTED,
                                            lambda body: ["m4"], guard=Guard(LIVE, "m4"))
                kept = await store.append_with(conn, consent_draft(new_subject(), 1), NOTED,
                                               lambda body: ["m1"], guard=Guard(LIVE, "m1"))
            assert kept.sequence == 1
            with pytest.raises(RuntimeError, match="undo"):
                async with conn.transaction():
                    await store.append_with(conn, consent_draft(new_subject(), 1), NOTED,
                                            lambda body: ["m2"], guard=Guard(LIVE, "m2"))
                    raise RuntimeError("undo")
            again = await store.append_with(conn, consent_draft(new_subject(), 1), NOTED,
                                            lambda body: ["m3"], guard=Guard(LIVE, "m3"))
        assert again.sequence == 2
        assert await _noted(pool, store) == {1: "m1", 2: "m3"}
    finally:
        await pool.close()


def test_a_guard_must_end_in_the_lock_a_group_can_make_skip() -> None:
    assert Guard(f"{LIVE} OF members", "m1").key == "m1"
    for statement in ("SELECT member_id FROM members", f"{LIVE} NOWAIT", f"{LIVE};",
                      f"{LIVE} LIMIT 1"):
        with pytest.raises(ValueError, match="FOR UPDATE"):
            Guard(statement, "m1")
