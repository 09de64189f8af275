"""Trace sampling from OTEL_TRACES_SAMPLER / _ARG (eventcore.telemetry): a conversation's journey
is kept or dropped whole, and a value the SDK would silently replace stops the service instead."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from eventcore import telemetry as core_telemetry
from eventcore.telemetry import (
    TRACE_SAMPLERS,
    Telemetry,
    TelemetryConfigError,
    UnrecordedTracer,
    configure_telemetry,
    current_traceparent,
    sampler_description,
    span_from,
    traceparent_of,
)

Configure = Callable[[str], Telemetry]


@pytest.fixture(params=["exported", "not exported"])
def configure(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
              ) -> Iterator[Configure]:
    """Services whose spans a processor receives (the SDK's tracer), or that export none (the
    tracer that records nothing): the sampling decisions must be the same."""
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    if request.param == "exported":
        monkeypatch.setattr(core_telemetry, "EXTRA_SPAN_PROCESSORS",
                            [SimpleSpanProcessor(InMemorySpanExporter())])
    made: list[Telemetry] = []

    def make(service: str) -> Telemetry:
        made.append(configure_telemetry(service))
        assert made[-1].exports_spans == (request.param == "exported")
        return made[-1]

    yield make
    for telemetry in made:
        telemetry.shutdown()


def kept(span: trace.Span, service: Telemetry) -> bool:
    """Whether `span` is kept: its sampled flag, which travels on. The SDK's tracer records
    exactly the sampled spans; a service that exports no spans records none."""
    sampled = span.get_span_context().trace_flags.sampled
    assert span.is_recording() == (sampled and service.exports_spans)
    assert span.get_span_context().is_valid
    return sampled


def sampler(monkeypatch: pytest.MonkeyPatch, name: str, arg: str | None = None) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    if arg is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)


def remote_parent(sampled: bool) -> dict[str, str]:
    flags = "01" if sampled else "00"
    return {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{flags}"}


def journey(intake: Telemetry, insight: Telemetry) -> list[bool]:
    """Whether each hop of one conversation's journey records: intake's request, its relay's
    publish, insight's apply (each continuing the traceparent the one before handed on)."""
    with intake.tracer.start_as_current_span("POST /conversations", kind=SpanKind.SERVER) as request:
        hops = [kept(request, intake)]  # an ended span records no more: ask while it is open
        stored = {"traceparent": current_traceparent() or ""}
    with span_from(intake.tracer, "intake.conversations.v1 publish", stored,
                   kind=SpanKind.PRODUCER) as publish:
        hops.append(kept(publish, intake))
        header = {"traceparent": current_traceparent() or ""}
    with span_from(insight.tracer, "intake.conversations.v1 apply", header,
                   kind=SpanKind.CONSUMER) as apply:
        hops.append(kept(apply, insight))
    return hops


def sampled_flag(traceparent: str | None) -> bool:
    assert traceparent is not None
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 0x01)  # 0x02 is "random trace id"


def test_at_ratio_0_a_new_journey_is_dropped_whole(
        configure: Configure, monkeypatch: pytest.MonkeyPatch) -> None:
    sampler(monkeypatch, "parentbased_traceidratio", "0")
    intake, insight = configure("intake"), configure("insight")
    with intake.tracer.start_as_current_span("POST /conversations") as root:
        assert not kept(root, intake)
        assert not sampled_flag(current_traceparent()), "the decision travels on"
    assert journey(intake, insight) == [False, False, False]


def test_at_ratio_0_a_journey_sampled_upstream_is_still_recorded(
        configure: Configure, monkeypatch: pytest.MonkeyPatch) -> None:
    sampler(monkeypatch, "parentbased_traceidratio", "0")
    insight = configure("insight")
    with span_from(insight.tracer, "apply", remote_parent(sampled=True),
                   kind=SpanKind.CONSUMER) as apply:
        assert kept(apply, insight)
        assert sampled_flag(current_traceparent())


def test_a_journey_is_kept_or_dropped_whole_at_any_ratio(
        configure: Configure, monkeypatch: pytest.MonkeyPatch) -> None:
    sampler(monkeypatch, "parentbased_traceidratio", "0.5")
    intake, insight = configure("intake"), configure("insight")
    outcomes = [journey(intake, insight) for _ in range(200)]
    assert all(len(set(hops)) == 1 for hops in outcomes), "a journey was split"
    assert {hops[0] for hops in outcomes} == {True, False}, "half of 200 kept, half dropped"


def test_at_ratio_1_every_journey_is_recorded(
        configure: Configure, monkeypatch: pytest.MonkeyPatch) -> None:
    sampler(monkeypatch, "parentbased_traceidratio", "1")
    intake, insight = configure("intake"), configure("insight")
    assert all(all(journey(intake, insight)) for _ in range(50))
    with span_from(insight.tracer, "apply", remote_parent(sampled=True),
                   kind=SpanKind.CONSUMER) as child:
        assert kept(child, insight)
    assert sampler_description() == "parentbased_traceidratio 1.0"


def test_a_caller_that_dropped_its_trace_is_followed_even_at_ratio_1(
        configure: Configure, monkeypatch: pytest.MonkeyPatch) -> None:
    sampler(monkeypatch, "parentbased_traceidratio", "1")
    insight = configure("insight")
    with span_from(insight.tracer, "apply", remote_parent(sampled=False),
                   kind=SpanKind.CONSUMER) as child:
        assert not kept(child, insight)
        assert not sampled_flag(current_traceparent())


def test_unset_means_every_trace_is_recorded(configure: Configure) -> None:
    intake, insight = configure("intake"), configure("insight")
    assert sampler_description() == "parentbased_always_on"
    assert journey(intake, insight) == [True, True, True]


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_value_counts_as_unset(
        configure: Configure, monkeypatch: pytest.MonkeyPatch, empty: str) -> None:
    sampler(monkeypatch, empty)
    assert sampler_description() == "parentbased_always_on"
    sampler(monkeypatch, "parentbased_traceidratio", empty)
    assert sampler_description() == "parentbased_traceidratio 1.0"  # the specification's default
    assert journey(configure("intake"), configure("insight")) == [True, True, True]


def test_each_hop_continues_the_trace_with_a_span_of_its_own(configure: Configure) -> None:
    """Exported or not, a journey is one trace id; each hop has its own span id, handed on as
    the next hop's parent (what logs and stored events carry)."""
    intake, insight = configure("intake"), configure("insight")
    with intake.tracer.start_as_current_span("POST /conversations", kind=SpanKind.SERVER) as request:
        stored = {"traceparent": current_traceparent() or ""}
    with span_from(intake.tracer, "publish", stored, kind=SpanKind.PRODUCER) as publish:
        header = {"traceparent": current_traceparent() or ""}
    with span_from(insight.tracer, "apply", header, kind=SpanKind.CONSUMER) as apply:
        inside = trace.get_current_span()
    hops = [span.get_span_context() for span in (request, publish, apply)]
    assert len({hop.trace_id for hop in hops}) == 1
    assert len({hop.span_id for hop in hops}) == 3
    assert inside is apply and trace.get_current_span() is not apply, "current inside, not after"
    assert stored["traceparent"] == traceparent_of(request)
    assert header["traceparent"] == traceparent_of(publish)


def test_new_traces_get_fresh_ids_and_errors_raised_inside_are_raised_on(
        configure: Configure) -> None:
    service = configure("insight")
    roots = [service.tracer.start_span("root") for _ in range(50)]
    assert len({root.get_span_context().trace_id for root in roots}) == 50
    assert all(root.get_span_context().is_valid for root in roots)
    with pytest.raises(KeyError, match="raised inside"), \
            service.tracer.start_as_current_span("failing"):
        raise KeyError("raised inside")
    assert current_traceparent() is None


def test_the_tracer_exporting_nothing_carries_the_callers_trace_state(
        configure: Configure) -> None:
    """A tracestate that came in is handed on, as the SDK's ParentBased sampler hands it on."""
    insight = configure("insight")
    carrier = {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
               "tracestate": "congo=t61rcWkgMzE"}
    with span_from(insight.tracer, "apply", carrier, kind=SpanKind.CONSUMER):
        written: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(written)
    assert written["tracestate"] == "congo=t61rcWkgMzE"
    assert written["traceparent"].split("-")[1] == carrier["traceparent"].split("-")[1]


class _FixedIds(RandomIdGenerator):
    """The same ids every time, so two tracers' spans can be compared field by field."""

    def __init__(self, random: bool) -> None:
        self._random = random

    def generate_trace_id(self) -> int:
        return 0x4BF92F3577B34DA6A3CE929D0E0E4736

    def generate_span_id(self) -> int:
        return 0x00F067AA0BA902B7

    def is_trace_id_random(self) -> bool:
        return self._random


_SAMPLERS = [sampling.DEFAULT_ON, sampling.DEFAULT_OFF, sampling.ALWAYS_ON, sampling.ALWAYS_OFF,
             sampling.TraceIdRatioBased(0.5), sampling.ParentBasedTraceIdRatio(0.5),
             sampling.TraceIdRatioBased(0.01), sampling.ParentBasedTraceIdRatio(0.01)]
_PARENTS: list[dict[str, str] | None] = [None] + [
    {"traceparent": f"00-{'0af7651916cd43dd8448eb211c80319c'}-b7ad6b7169203331-{flags}", **state}
    for flags in ("00", "01", "02", "03")
    for state in ({}, {"tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"})]


@pytest.mark.parametrize("random", [True, False], ids=["random ids", "other ids"])
@pytest.mark.parametrize("sampler", _SAMPLERS, ids=lambda s: s.get_description())
def test_a_span_exported_or_not_has_the_same_context(
        sampler: sampling.Sampler, random: bool) -> None:
    """Trace id, span id, every flag (sampled, random trace id), trace state, remoteness: the
    tracer that records nothing gives each span exactly what the SDK's gives it."""
    provider = TracerProvider(sampler=sampler, id_generator=_FixedIds(random))
    sdk, unrecorded = provider.get_tracer("t"), UnrecordedTracer(sampler, _FixedIds(random))
    for parent in _PARENTS:
        context = None if parent is None else TraceContextTextMapPropagator().extract(parent)
        for kind in (SpanKind.SERVER, SpanKind.CONSUMER):
            expected = sdk.start_span("s", context=context, kind=kind).get_span_context()
            made = unrecorded.start_span("s", context=context, kind=kind)
            assert made.get_span_context() == expected, (parent, kind)
            assert not made.is_recording()


def test_with_the_sdk_disabled_no_span_has_ids_of_its_own(
        configure: Configure, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED=true means the SDK's no-op tracer, exporter or not, as before."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    service = configure("insight")
    assert not service.tracer.start_span("root").get_span_context().is_valid
    incoming = remote_parent(sampled=True)
    with span_from(service.tracer, "apply", incoming, kind=SpanKind.CONSUMER):
        assert current_traceparent() == incoming["traceparent"]


def test_the_description_names_the_sampler_and_its_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler(monkeypatch, "ParentBased_TraceIdRatio", "0.1")  # names are case-blind, as in the SDK
    assert sampler_description() == "parentbased_traceidratio 0.1"
    sampler(monkeypatch, "traceidratio", "1e-3")
    assert sampler_description() == "traceidratio 0.001"
    sampler(monkeypatch, "always_off", "0.1")  # the ratio is only read by the ratio samplers
    assert sampler_description() == "always_off"


@pytest.mark.parametrize("name", ["parentbased_traceidration", "ratio", "parentbased-always-on"])
def test_an_unknown_sampler_stops_the_service(
        configure: Configure, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    sampler(monkeypatch, name, "0.1")
    with pytest.raises(TelemetryConfigError,
                       match=rf"^OTEL_TRACES_SAMPLER: '{name}' is not a sampler .*"
                             r"parentbased_traceidratio"):
        configure("intake")
    with pytest.raises(TelemetryConfigError, match="^OTEL_TRACES_SAMPLER: "):
        sampler_description()


@pytest.mark.parametrize("arg", ["0.1x", "10%", "1.5", "-0.1", "nan", "inf"])
def test_a_ratio_outside_0_to_1_stops_the_service(
        configure: Configure, monkeypatch: pytest.MonkeyPatch, arg: str) -> None:
    sampler(monkeypatch, "parentbased_traceidratio", arg)
    expected = "OTEL_TRACES_SAMPLER_ARG: must be a number between 0 and 1"
    with pytest.raises(TelemetryConfigError, match=f"^{re.escape(expected)}.*{re.escape(arg)}"):
        configure("insight")


def test_the_samplers_accepted_are_the_sdks_built_in_ones() -> None:
    # The SDK's own table, private: if an upgrade changes it, this says so.
    assert set(sampling._KNOWN_SAMPLERS) == TRACE_SAMPLERS


@pytest.mark.parametrize("flags", ["01", "00"])
def test_the_traceparent_stored_is_what_the_w3c_propagator_writes(flags: str) -> None:
    """`traceparent_of` formats the W3C header itself (no detour through the configured
    propagators): the same text the W3C propagator writes, sampled or not, and None with no
    span."""
    provider = TracerProvider(sampler=sampling.ParentBased(sampling.ALWAYS_ON))
    incoming = {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{flags}"}
    with provider.get_tracer("t").start_as_current_span(
            "s", context=TraceContextTextMapPropagator().extract(incoming)) as span:
        written: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(written)
        assert traceparent_of(span) == current_traceparent() == written["traceparent"]
        assert written["traceparent"].endswith(f"-{flags}")
    assert current_traceparent() is None


_TRACE, _SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.mark.parametrize("traceparent, tracestate", [
    (f"00-{_TRACE}-{_SPAN}-01", None),
    (f"00-{_TRACE}-{_SPAN}-00", None),
    (f" \t00-{_TRACE}-{_SPAN}-01\t ", None),
    (f"00-{_TRACE}-{_SPAN}-01\n", None),
    (f"00-{_TRACE}-{_SPAN}-01", "vendor=opaque,other=1"),
    (f"01-{_TRACE}-{_SPAN}-03-future-part", None),
    (f"00-{_TRACE}-{_SPAN}-01-extra", None),
    (f"ff-{_TRACE}-{_SPAN}-01", None),
    (f"00-{'0' * 32}-{_SPAN}-01", None),
    (f"00-{_TRACE}-{'0' * 16}-01", None),
    (f"00-{_TRACE.upper()}-{_SPAN}-01", None),
    (f"00-{_TRACE}-{_SPAN}", None),
    ("not a traceparent", None),
    ("", None),
    (None, None),
])
def test_a_remote_parent_is_what_the_w3c_propagator_extracts(
    traceparent: str | None, tracestate: str | None
) -> None:
    """`remote_parent` reads the W3C headers itself: the same parent as the W3C propagator's
    extract for valid, odd and broken headers alike, and a new trace where it finds none."""
    carrier = {k: v for k, v in (("traceparent", traceparent), ("tracestate", tracestate))
               if v is not None}
    expected = trace.get_current_span(TraceContextTextMapPropagator().extract(carrier))
    found = trace.get_current_span(core_telemetry.remote_parent(traceparent, tracestate))
    assert found.get_span_context() == expected.get_span_context()
    assert found.get_span_context().trace_state == expected.get_span_context().trace_state
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("outer"):  # a current span elsewhere
        child = provider.get_tracer("t").start_span(
            "s", context=core_telemetry.remote_parent(traceparent, tracestate))
    parent = expected.get_span_context()
    if parent.is_valid:
        assert child.get_span_context().trace_id == parent.trace_id
    else:  # a new trace, not a child of whatever span is current
        assert child.parent is None
