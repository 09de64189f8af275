"""Group commit on real PostgreSQL: lone appends from many tasks share commits, a conflicting
caller gets its own error, and writers in and out of transactions (and in another "process")
keep the sequence gapless and the chain whole."""

from __future__ import annotations

import asyncio
import random

import pytest

from eventcore.db import create_pool
from eventcore.store import ConcurrencyError, EventStore, RecordedEvent
from tests.integration.store_kit import (
    SOURCE,
    cancel_callers,
    consent_draft,
    core_schema,
    new_subject,
)
from tests.integration.test_event_store_batch import assert_chain_holds

pytestmark = pytest.mark.integration


async def test_lone_appends_share_commits_and_a_conflicting_caller_fails_alone(
        database_url: str) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema, max_size=24)
    store = EventStore(SOURCE)
    taken = new_subject()
    try:
        async with pool.acquire() as conn:
            await store.append(conn, [consent_draft(taken, 1)])
        for _ in range(3):
            drafts = [consent_draft(new_subject(), 1) for _ in range(20)]
            drafts.insert(7, consent_draft(taken, 1))  # already written: must fail, alone

            async def one(draft: object) -> list[RecordedEvent] | ConcurrencyError:
                async with pool.acquire() as conn:
                    try:
                        return await store.append(conn, [draft])  # type: ignore[list-item]
                    except ConcurrencyError as exc:
                        return exc
            outcomes = await asyncio.gather(*(one(d) for d in drafts))
            assert isinstance(outcomes[7], ConcurrencyError) and outcomes[7].subject == taken
            for draft, outcome in zip(drafts, outcomes, strict=True):
                if draft.subject != taken:
                    assert isinstance(outcome, list)
                    [event] = outcome
                    assert event.event_id == draft.id and event.subject == draft.subject
        async with pool.acquire() as conn:
            stored = await assert_chain_holds(conn, store)
            assert len(stored) == 1 + 3 * 20
            transactions = await conn.fetchval(
                "SELECT count(DISTINCT xmin::text::bigint) FROM events")
        assert transactions < len(stored) / 2, "lone appends were committed in groups"
    finally:
        await pool.close()


async def test_mixed_writers_keep_the_sequence_gapless_and_every_result_true(
        database_url: str) -> None:
    """Coalesced appends, appends in callers' transactions (some rolled back) and a second store
    (another process) with its own memory of the head, all at once, with version races."""
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema, max_size=20)
    ours, theirs = EventStore(SOURCE), EventStore(SOURCE)
    subjects = [new_subject() for _ in range(6)]
    rng = random.Random(7)
    returned: dict[object, RecordedEvent] = {}
    rolled_back = conflicts = 0

    async def writer(n: int) -> None:
        nonlocal rolled_back, conflicts
        store = theirs if n % 4 == 3 else ours
        for _ in range(15):
            async with pool.acquire() as conn:
                subject = rng.choice(subjects)
                version = len(await store.load_subject(conn, subject)) + 1
                drafts = [consent_draft(subject, version + k) for k in range(rng.choice((1, 1, 3)))]
                try:
                    if n % 2:
                        async with conn.transaction():
                            events = await store.append(conn, drafts)
                            if rng.random() < 0.2:
                                rolled_back += 1
                                raise _RollBack
                    else:
                        events = await store.append(conn, drafts)
                except _RollBack:
                    continue
                except ConcurrencyError:
                    conflicts += 1
                    continue
                for event in events:
                    returned[event.event_id] = event

    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(12))), 120)
    try:
        async with pool.acquire() as conn:
            stored = await assert_chain_holds(conn, ours)
        assert conflicts > 0 and rolled_back > 0, "the test must produce races and rollbacks"
        assert {e.event_id: e for e in stored} == returned
        by_subject: dict[str, list[int]] = {}
        for event in stored:
            by_subject.setdefault(event.subject, []).append(event.subject_version)
        assert all(v == list(range(1, len(v) + 1)) for v in by_subject.values())
    finally:
        await pool.close()


class _RollBack(Exception):
    pass


async def test_cancelled_appenders_never_stall_the_group(database_url: str) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema, max_size=16)
    store = EventStore(SOURCE)
    returned: list[RecordedEvent] = []

    async def one() -> None:
        async with pool.acquire() as conn:
            returned.extend(await store.append(conn, [consent_draft(new_subject(), 1)]))
    try:
        await cancel_callers(one)
        async with pool.acquire() as conn:
            stored = await assert_chain_holds(conn, store)
        # Every result a caller got is stored; a cancelled caller's event may be stored or not.
        assert {e.event_id for e in returned} <= {e.event_id for e in stored}
        assert len(returned) >= 10 * 8 + 1
    finally:
        await pool.close()
