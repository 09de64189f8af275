"""Bench phases 1-2: raw PostgreSQL, the event store and its peer; the raw broker."""

from __future__ import annotations

import asyncio
import logging

from golden_thread.bench import peer, raw_kafka, raw_pg, store_append
from golden_thread.bench.context import Context
from golden_thread.bench.fixtures import Drafts, raw_payload
from golden_thread.bench.infra import (
    create_database,
)
from golden_thread.bench.report import Figure

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- 1. database and store


async def database(ctx: Context) -> None:
    plan, report = ctx.plan, ctx.report
    drafts = Drafts()
    body = drafts.body_json()
    # One database for the raw tables (public), the store (schema intake) and the peer
    # (public.stored_events): they share nothing but the server, as services do.
    url = await create_database(ctx.endpoints, "bench_db")
    for limit in await raw_pg.measure(url, body, plan.db_seconds):
        report.add_raw(limit)
    cpu: dict[int, dict[str, dict[str, float]]] = {}
    rates = await store_append.measure(url, plan.db_seconds,
                                       batches=(1, 5, 100),
                                       expected_rate=600 if plan.mode == "quick" else 3_000,
                                       meter=ctx.cpu_meter(), cpu=cpu)
    single, five, hundred = rates[1].per_s, rates[5].per_s, rates[100].per_s
    report.add(Figure("store.append_single", "store append, 1 event/txn, 8 conn", single,
                      "events/s", "pg.event_outbox_8conn", report.raw_value("pg.event_outbox_8conn"),
                      target=0.8, detail={"connections": 8, "batch": 1,
                                          "cpu_ms_per_event": cpu.get(1)}))
    report.add(Figure("store.append_batch100", "store append, 100 events/txn, 8 conn", hundred,
                      "events/s", "pg.executemany100_8conn",
                      report.raw_value("pg.executemany100_8conn"), target=0.8,
                      detail={"connections": 8, "batch": 100, "cpu_ms_per_event": cpu.get(100)}))
    ctx.report.notes.append(f"store append with 5 events/txn: {five:,.0f} events/s")
    reason = peer.available()
    if reason is None:
        limits = await asyncio.to_thread(peer.measure, url, body.encode(), plan.db_seconds)
        for limit in limits:
            report.add_raw(limit)
    else:
        # The figures stay in the report, with no raw limit, so that their absence is seen.
        report.notes.append(f"peer not measured: {reason}")
    report.add(Figure("store.append_single_vs_peer", "store append, 1 event/txn vs eventsourcing",
                      single, "events/s", "peer.append_batch1_8conn",
                      report.raw_value("peer.append_batch1_8conn"), target=3.0,
                      detail={"connections": 8, "batch": 1}))
    report.add(Figure("store.append_batch5_vs_peer", "store append, 5 events/txn vs eventsourcing",
                      five, "events/s", "peer.append_batch5_8conn",
                      report.raw_value("peer.append_batch5_8conn"), target=3.0,
                      detail={"connections": 8, "batch": 5}))


# ---------------------------------------------------------------- 2. broker


async def broker(ctx: Context) -> None:
    measured = await raw_kafka.measure(ctx.endpoints, raw_payload(400), ctx.plan.kafka_messages)
    for limit in (measured.produce, measured.consume, measured.pipeline):
        ctx.report.add_raw(limit)


# ---------------------------------------------------------------- 3. intake, insight, e2e
