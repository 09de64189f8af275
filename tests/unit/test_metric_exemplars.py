"""A service's metrics keep no exemplars unless asked (OTEL_METRICS_EXEMPLAR_FILTER): the SDK's
default offers every measurement made in a sampled span to a reservoir, and the one reader a
service has, Prometheus's, shows none."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from eventcore.telemetry import meter_provider_for


def exemplars_kept(monkeypatch: pytest.MonkeyPatch, setting: str | None) -> int:
    if setting is None:
        monkeypatch.delenv("OTEL_METRICS_EXEMPLAR_FILTER", raising=False)
    else:
        monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", setting)
    reader = InMemoryMetricReader()
    counter = meter_provider_for(Resource.create({}), [reader]).get_meter("t").create_counter("c")
    with TracerProvider().get_tracer("t").start_as_current_span("sampled"):
        for _ in range(5):
            counter.add(1, {"type": "ConversationLogged"})
    data = reader.get_metrics_data()
    assert data is not None
    [point] = [p for rm in data.resource_metrics for sm in rm.scope_metrics
               for m in sm.metrics for p in m.data.data_points]
    assert isinstance(point, NumberDataPoint) and point.value == 5
    return len(point.exemplars)


def test_no_exemplars_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exemplars_kept(monkeypatch, None) == 0


def test_the_setting_turns_them_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exemplars_kept(monkeypatch, "trace_based") > 0
