"""Metrics, readiness and trace context of a service, against the real stack."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts import parse_event
from contracts.topics import ALL_TOPICS, CONVERSATIONS
from eventcore import runtime, telemetry
from eventcore.db import create_pool
from eventcore.embedded import EmbeddedStack, StackEndpoints
from eventcore.settings import CoreSettings
from tests.integration.intake_fixtures import RunningIntake, running_intake
from tests.integration.test_intake_http import read_raw, request

pytestmark = pytest.mark.integration


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def eventually_metric(intake: RunningIntake, name: str, want: float, **labels: str) -> str:
    for _ in range(100):
        text = (await intake.client.get("/metrics")).text
        if metric(text, name, **labels) == want:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name}{labels} never reached {want}:\n" + text[:3000])


@pytest.fixture(scope="module")
async def traced_intake(endpoints: StackEndpoints) -> AsyncIterator[tuple[RunningIntake, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    telemetry.EXTRA_SPAN_PROCESSORS.append(processor)
    try:
        async with running_intake(endpoints) as running:
            yield running, exporter
    finally:
        telemetry.EXTRA_SPAN_PROCESSORS.remove(processor)


async def test_metrics_count_appends_and_publishes_and_the_backlog_drains(
    traced_intake: tuple[RunningIntake, InMemorySpanExporter],
) -> None:
    intake, _ = traced_intake
    for _ in range(3):
        assert (await intake.client.post("/conversations", json=request())).status_code == 201
    text = await eventually_metric(intake, "gt_events_published_total", 3, type="ConversationLogged")
    assert metric(text, "gt_events_appended_total", type="ConversationLogged") == 3
    await eventually_metric(intake, "gt_outbox_backlog", 0, source="intake")
    text = (await intake.client.get("/metrics")).text
    assert re.search(r'http_server_(request_)?duration.*_count\{.*\} [1-9]', text), "HTTP latency"


async def test_one_trace_runs_from_the_http_request_through_the_relay_onto_kafka(
    traced_intake: tuple[RunningIntake, InMemorySpanExporter], endpoints: StackEndpoints,
) -> None:
    intake, exporter = traced_intake
    answer = (await intake.client.post("/conversations", json=request())).json()
    raw = (await read_raw(endpoints, CONVERSATIONS, {answer["event_id"]}))[answer["event_id"]]
    event = parse_event(raw)
    assert event.traceparent is not None
    trace_id = event.traceparent.split("-")[1]
    for _ in range(50):
        spans = [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]
        if any(s.name.endswith("publish") for s in spans):
            break
        await asyncio.sleep(0.1)
    names = {s.name for s in spans}
    assert "POST /conversations" in names, names
    assert f"{CONVERSATIONS} publish" in names, names


async def test_readiness_is_false_while_the_database_is_down_and_true_after() -> None:
    stack = EmbeddedStack(CoreSettings(), topics=ALL_TOPICS)
    async with stack as own, running_intake(own) as intake:
        assert (await intake.client.get("/health/ready")).json()["ready"] is True
        await stack.stop_database()
        answer = await intake.client.get("/health/ready")
        assert answer.status_code == 503 and answer.json()["checks"]["database"] is False
        await stack.start_database()
        for _ in range(50):
            if (await intake.client.get("/health/ready")).status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert (await intake.client.get("/health/ready")).json() == {
            "ready": True, "checks": {"migrations": True, "database": True, "broker": True}}
        assert (await intake.client.post("/conversations", json=request())).status_code == 201


async def test_stopping_closes_the_pool_even_with_a_connection_never_given_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Pool.close` waits for every connection to be released; one that never is (left broken
    by a database restart mid-query) must not keep a service from stopping."""
    pool = await create_pool(database_url, "public", max_size=2)
    held = await pool.acquire()  # never released
    monkeypatch.setattr(runtime, "POOL_CLOSE_TIMEOUT_S", 0.5)
    await asyncio.wait_for(runtime._close_pool(pool), 30)  # waited 0.5 s, then terminated
    assert pool.is_closing() and pool.get_size() == 0
    with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
        held.is_closed()  # taken back from the holder that never gave it
