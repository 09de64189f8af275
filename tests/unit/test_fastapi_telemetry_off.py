"""A service's request span is its own (`ops.HttpTelemetry`, on the service's providers):
FastAPI's built-in telemetry stays off even where a global tracer and meter provider are set,
as an `opentelemetry-instrument` run sets them, so no request gets a second span."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from golden_thread.access import service_apps


def test_fastapi_records_nothing_under_global_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: tracer_provider)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: MeterProvider([reader]))

    async def call_each() -> dict[str, int]:
        statuses = {}
        for name, app in service_apps().items():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                statuses[name] = (await client.get("/health/live")).status_code
        return statuses

    assert asyncio.run(call_each()) == dict.fromkeys(("intake", "insight", "priority",
                                                      "feedback"), 200)
    assert spans.get_finished_spans() == ()
    assert reader.get_metrics_data() is None
