"""Batched appends on real PostgreSQL: one statement per batch, the chain the SQL always computed,
optimistic concurrency, and the head remembered in memory going stale."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from contracts import body_digest, parse_event, verify_chain
from eventcore.db import create_pool
from eventcore.store import ConcurrencyError, EventStore, RecordedEvent, notify_channel
from tests.integration.store_kit import SOURCE, consent_draft, core_schema, new_subject

pytestmark = pytest.mark.integration


async def assert_chain_holds(conn: asyncpg.Connection, store: EventStore) -> list[RecordedEvent]:
    """Gapless from 1, verified by the contracts, and each hash what the SQL chain gives."""
    stored = await store.read_after(conn, 0, 100_000)
    assert [e.sequence for e in stored] == list(range(1, len(stored) + 1))
    assert verify_chain(parse_event(json.dumps(e.envelope)) for e in stored) is None
    prev = bytes(32)
    for event in stored:
        digest = body_digest(parse_event(json.dumps(event.envelope)))
        sql_hash = await conn.fetchval("SELECT sha256($1::bytea || int8send($2) || $3::bytea)",
                                       prev, event.sequence, digest)
        assert (event.prevhash, event.hash) == (prev.hex(), sql_hash.hex())
        prev = sql_hash
    assert await store.head(conn) == len(stored)
    return stored


async def test_batches_are_one_transaction_each_chained_gapless_and_returned_as_stored(
        database_url: str) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema)
    store = EventStore(SOURCE)
    a, b, c = new_subject(), new_subject(), new_subject()
    notified: list[str] = []
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(notify_channel(SOURCE), lambda *args: notified.append(args[2]))
    try:
        async with pool.acquire() as conn:
            returned = await store.append(conn, [consent_draft(a, 1), consent_draft(a, 2),
                                                 consent_draft(b, 1), consent_draft(a, 3)])
            returned += await store.append(conn, [consent_draft(c, 1)])
            async with conn.transaction():  # inside the caller's transaction
                returned += await store.append(conn, [consent_draft(b, 2), consent_draft(c, 2)])
                returned += await store.append(conn, [consent_draft(a, 4)])
            returned += await store.append(conn, [consent_draft(new_subject(), 1)
                                                  for _ in range(250)])
            stored = await assert_chain_holds(conn, store)
            assert returned == stored, "the returned events are exactly what was stored"
            transactions = await conn.fetchval(
                "SELECT count(DISTINCT xmin::text::bigint) FROM events")
            assert transactions == 4, "one transaction per batch (two appends in one txn)"
        await asyncio.sleep(0.2)
        assert notified and len(notified) <= 5
    finally:
        await listener.close()
        await pool.close()


async def test_version_rules_hold_within_and_across_batches(database_url: str) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema)
    store, a, b = EventStore(SOURCE), new_subject(), new_subject()
    try:
        async with pool.acquire() as conn:
            await store.append(conn, [consent_draft(a, 1)])
            refused = [
                [consent_draft(a, 1)],  # taken
                [consent_draft(a, 3)],  # not next
                [consent_draft(b, 1), consent_draft(a, 2), consent_draft(a, 2)],  # twice
                [consent_draft(b, 1), consent_draft(a, 3), consent_draft(a, 2)],  # out of order
                [consent_draft(b, 1), consent_draft(b, 3)],  # a gap inside the batch
            ]
            for drafts in refused:
                with pytest.raises(ConcurrencyError):
                    await store.append(conn, drafts)
                assert await store.head(conn) == 1, "a refused batch writes nothing"
            # A conflict found by the version check leaves the caller's transaction usable.
            async with conn.transaction():
                with pytest.raises(ConcurrencyError):
                    await store.append(conn, [consent_draft(a, 5)])
                await store.append(conn, [consent_draft(a, 2)])
            # A rolled-back append leaves the remembered head stale; the next append notices.
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await store.append(conn, [consent_draft(b, 1), consent_draft(b, 2)])
                    raise RuntimeError("the caller gives up")
            assert await store.head(conn) == 2
            await store.append(conn, [consent_draft(b, 1)])
            async with conn.transaction():
                await store.append(conn, [consent_draft(b, 2)])
            stored = await assert_chain_holds(conn, store)
            assert [(e.subject, e.subject_version) for e in stored] == [
                (a, 1), (a, 2), (b, 1), (b, 2)]
    finally:
        await pool.close()


async def test_two_writers_of_the_same_version_one_wins(database_url: str) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema, max_size=8)
    # Two stores: two processes, each with its own memory of the head.
    stores = [EventStore(SOURCE), EventStore(SOURCE)]
    try:
        for in_transaction in (False, True):
            for round_ in range(5):
                subject = new_subject()
                gate = asyncio.Event()

                async def write(store: EventStore, subject: str = subject,
                                gate: asyncio.Event = gate,
                                in_transaction: bool = in_transaction) -> object:
                    async with pool.acquire() as conn:
                        await gate.wait()
                        try:
                            if in_transaction:
                                async with conn.transaction():
                                    return await store.append(conn, [consent_draft(subject, 1)])
                            return await store.append(conn, [consent_draft(subject, 1)])
                        except ConcurrencyError as exc:
                            return exc
                # Same store (one process: its group commit) and two stores (two processes).
                pair = (stores[0], stores[0]) if round_ % 2 else (stores[0], stores[1])
                tasks = [asyncio.create_task(write(s)) for s in pair]
                await asyncio.sleep(0.02)
                gate.set()
                outcomes = await asyncio.gather(*tasks)
                assert sorted(isinstance(o, ConcurrencyError) for o in outcomes) == [False, True]
                assert any(isinstance(o, list) for o in outcomes)
        async with pool.acquire() as conn:
            await assert_chain_holds(conn, stores[0])
    finally:
        await pool.close()


async def test_an_append_chained_on_an_uncommitted_one_waits_for_it_and_lands_either_way(
        database_url: str) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema, max_size=4)
    store = EventStore(SOURCE)
    try:
        for commit in (True, False):
            async with pool.acquire() as holder, pool.acquire() as other:
                tx = holder.transaction()
                await tx.start()
                [held] = await store.append(holder, [consent_draft(new_subject(), 1)])
                # Chains on `held` (the head in memory), which is not committed yet.
                lone = asyncio.create_task(store.append(other, [consent_draft(new_subject(), 1)]))
                await asyncio.sleep(0.1)
                assert not lone.done(), "it waits for the head row's lock"
                await (tx.commit() if commit else tx.rollback())
                [landed] = await asyncio.wait_for(lone, 10)
                assert landed.sequence == held.sequence + (1 if commit else 0)
        async with pool.acquire() as conn:
            stored = await assert_chain_holds(conn, store)
            assert len(stored) == 3
    finally:
        await pool.close()


async def test_appends_in_concurrent_transactions_queue_on_the_head_and_never_retry(
        database_url: str) -> None:
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema, max_size=8)
    store = EventStore(SOURCE)
    statements: list[str] = []

    async def transaction(n: int) -> None:
        def log(record: Any) -> None:
            statements.append(record.query)

        async with pool.acquire() as conn:
            conn.add_query_logger(log)
            try:
                async with conn.transaction():
                    await store.append(conn, [consent_draft(new_subject(), 1)])
                    await asyncio.sleep(0.01 * (n % 3))  # commits in another order than sent
                    if n == 5:
                        raise RuntimeError("this one rolls back")
            finally:
                conn.remove_query_logger(log)

    try:
        results = await asyncio.gather(*(transaction(n) for n in range(16)),
                                       return_exceptions=True)
        assert [n for n, r in enumerate(results) if r is not None] == [5]
        appends = [q for q in statements if "INSERT INTO events" in q]
        assert len(appends) == 16, "one statement per append, no retries"
        async with pool.acquire() as conn:
            stored = await assert_chain_holds(conn, store)
            assert len(stored) == 15
            # and an append outside a transaction chains on from there
            await store.append(conn, [consent_draft(new_subject(), 1)])
            assert len(await assert_chain_holds(conn, store)) == 16
    finally:
        await pool.close()


async def test_a_body_holding_the_bodies_separator_is_stored_as_written(database_url: str) -> None:
    """The batch's bodies go to the server as one text separated by U+001E; a body whose values
    hold that character carries it escaped (JSON text never holds it raw), so it splits right."""
    schema = await core_schema(database_url)
    pool = await create_pool(database_url, schema)
    store = EventStore(SOURCE)
    odd = ["k=\x1e", "\x1e\x1e", "a\x1eb=c"]  # tracestate: free text in the envelope

    def drafts(version: int) -> list[Any]:
        return [consent_draft(s, version).model_copy(update={"tracestate": t})
                for s, t in zip(subjects, odd, strict=True)]

    subjects = [new_subject() for _ in odd]
    try:
        async with pool.acquire() as conn:
            # Chained under the head's lock (none in memory yet), in a transaction, then from
            # the head in memory.
            returned = await store.append(conn, drafts(1))
            async with conn.transaction():
                returned += await store.append(conn, drafts(2))
            returned += await store.append(conn, drafts(3))
            stored = await assert_chain_holds(conn, store)
            assert returned == stored
            assert [e.envelope["tracestate"] for e in stored] == odd * 3
            assert [e.subject for e in stored] == subjects * 3
            bodies = await conn.fetchval("SELECT array_agg(body::text) FROM events")
            assert all("\x1e" not in b and "\\u001e" in b for b in bodies)
    finally:
        await pool.close()
