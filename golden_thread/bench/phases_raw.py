"""Bench phases 1-2: raw PostgreSQL, the event store and its peer; the raw broker."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import statistics

from golden_thread.bench import peer, raw_kafka, raw_pg, store_append
from golden_thread.bench.context import Context
from golden_thread.bench.fixtures import Drafts, raw_payload
from golden_thread.bench.infra import (
    create_database,
    drop_database,
)
from golden_thread.bench.report import Figure, RawLimit

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- 1. database and store


async def database(ctx: Context) -> None:
    """Raw PostgreSQL, the store and the peer, each measured `plan.db_rounds` times in turn
    (a round each, so that a slow moment of the machine falls on all of them alike); every
    figure and raw limit is the median of its rounds, which are kept in its detail."""
    plan, report = ctx.plan, ctx.report
    drafts = Drafts()
    body = drafts.body_json()
    # One database for the raw tables (public), the store (schema intake) and the peer
    # (public.stored_events): they share nothing but the server, as services do.
    url = await create_database(ctx.endpoints, "bench_db")
    reason = peer.available()
    limits: dict[str, list[RawLimit]] = {}
    rates: dict[int, list[float]] = {1: [], 5: [], 100: []}
    cpu: dict[int, dict[str, dict[str, float]]] = {}  # the last round's
    try:
        for _ in range(plan.db_rounds):
            measured = await raw_pg.measure(url, body, plan.db_seconds)
            if reason is None:
                measured += await asyncio.to_thread(peer.measure, url, body.encode(),
                                                    plan.db_seconds)
            for limit in measured:
                limits.setdefault(limit.key, []).append(limit)
            store_rates = await store_append.measure(
                url, plan.db_seconds, batches=(1, 5, 100),
                expected_rate=600 if plan.mode == "quick" else 3_000, meter=ctx.cpu_meter(),
                cpu=cpu)
            for batch, rate in store_rates.items():
                rates[batch].append(rate.per_s)
    finally:
        # Its hundreds of thousands of rows would keep autovacuum and the checkpointer busy
        # through the next phases (full runs timed e2e worse than runs without this phase).
        await drop_database(ctx.endpoints, url)
    for rounds in limits.values():
        report.add_raw(_median_limit(rounds))
    if reason is not None:
        # The figures stay in the report, with no raw limit, so that their absence is seen.
        report.notes.append(f"peer not measured: {reason}")
    single, five, hundred = (statistics.median(rates[b]) for b in (1, 5, 100))

    def detail(batch: int, **more: object) -> dict[str, object]:
        return {"connections": 8, "batch": batch, "rounds": [round(r) for r in rates[batch]],
                **more}

    report.add(Figure("store.append_single", "store append, 1 event/txn, 8 conn", single,
                      "events/s", "pg.event_outbox_8conn", report.raw_value("pg.event_outbox_8conn"),
                      target=0.8, detail=detail(1, cpu_ms_per_event=cpu.get(1))))
    report.add(Figure("store.append_batch100", "store append, 100 events/txn, 8 conn", hundred,
                      "events/s", "pg.executemany100_8conn",
                      report.raw_value("pg.executemany100_8conn"), target=0.8,
                      detail=detail(100, cpu_ms_per_event=cpu.get(100))))
    ctx.report.notes.append(f"store append with 5 events/txn: {five:,.0f} events/s")
    report.add(Figure("store.append_single_vs_peer", "store append, 1 event/txn vs eventsourcing",
                      single, "events/s", "peer.append_batch1_8conn",
                      report.raw_value("peer.append_batch1_8conn"), target=3.0, detail=detail(1)))
    report.add(Figure("store.append_batch5_vs_peer", "store append, 5 events/txn vs eventsourcing",
                      five, "events/s", "peer.append_batch5_8conn",
                      report.raw_value("peer.append_batch5_8conn"), target=3.0, detail=detail(5)))


def _median_limit(rounds: list[RawLimit]) -> RawLimit:
    middle = sorted(rounds, key=lambda limit: limit.value)[len(rounds) // 2]
    if len(rounds) == 1:
        return middle
    return dataclasses.replace(middle, value=statistics.median(r.value for r in rounds),
                               detail={**middle.detail, "rounds": [r.value for r in rounds]})


# ---------------------------------------------------------------- 2. broker


async def broker(ctx: Context) -> None:
    measured = await raw_kafka.measure(ctx.endpoints, raw_payload(400), ctx.plan.kafka_messages)
    for limit in (measured.produce, measured.consume, measured.pipeline):
        ctx.report.add_raw(limit)


# ---------------------------------------------------------------- 3. intake, insight, e2e
