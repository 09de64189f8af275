"""The HTTP server span and latency histogram every service gets (eventcore.ops.HttpTelemetry)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from eventcore.ops import HttpTelemetry
from eventcore.telemetry import current_traceparent

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


def _app() -> tuple[FastAPI, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    app = FastAPI()

    @app.post("/things/{thing_id}")
    async def post_thing(thing_id: str) -> dict[str, str | None]:
        return {"traceparent": current_traceparent()}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(HttpTelemetry, tracer=tracer_provider.get_tracer("t"),
                       meter=meters.get_meter("m"))
    return app, spans, reader


def _durations(reader: InMemoryMetricReader) -> list[dict[str, object]]:
    data = reader.get_metrics_data()
    assert data is not None
    return [dict(point.attributes or {}) for rm in data.resource_metrics for sm in rm.scope_metrics
            for metric in sm.metrics if metric.name == "http.server.duration"
            for point in metric.data.data_points]


async def test_the_request_span_is_named_by_route_continues_the_caller_and_is_current() -> None:
    app, spans, reader = _app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        answer = await client.post("/things/p_0123456789abcdef", headers={"traceparent": CALLER})
    [span] = spans.get_finished_spans()
    assert span.name == "POST /things/{thing_id}" and span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert answer.json()["traceparent"].split("-")[2] == format(span.context.span_id, "016x")
    assert span.attributes is not None and span.attributes["http.status_code"] == 200
    # The route template, never the concrete path (no ids in spans or metric labels).
    assert "p_0123456789abcdef" not in str(dict(span.attributes))
    assert _durations(reader) == [{"http.method": "POST", "http.status_code": 200,
                                   "http.target": "/things/{thing_id}"}]


async def test_a_failing_request_is_an_error_span_and_probes_are_not_traced() -> None:
    app, spans, reader = _app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as client:
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    boom, nowhere = spans.get_finished_spans()
    assert boom.name == "GET /boom" and boom.status.status_code is StatusCode.ERROR
    assert nowhere.name == "GET" and nowhere.parent is None
    assert {"http.method": "GET", "http.status_code": 404} in _durations(reader)
