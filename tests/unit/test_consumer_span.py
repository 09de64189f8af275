"""The consumer's span per event (eventcore.tracecontext.start_consumer_span): made from the
message's headers without the SDK's detours where the tracer records nothing, and then exactly
the span the tracer's own `start_span` would have given: same trace, same flags and trace state,
an id of its own, and the traceparent stored in the inbox written from it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    ParentBased,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind

from eventcore.telemetry import TRACE_SAMPLERS, SamplerSetting, Telemetry, configure_telemetry
from eventcore.tracecontext import (
    ChildSpan,
    UnrecordedTracer,
    remote_parent,
    start_consumer_span,
    traceparent_of,
)

TOPIC = "intake.conversations.v1"


def header(flags: str = "01", version: str = "00") -> str:
    return f"{version}-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{flags}"


@pytest.fixture(params=sorted(TRACE_SAMPLERS))
def unrecorded(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[tuple[str, Telemetry]]:
    """A service that exports no spans, with each sampler OTEL_TRACES_SAMPLER can name (the
    ratio ones at 0.5, so both decisions occur)."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", request.param)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    telemetry = configure_telemetry("insight")
    assert telemetry.unrecorded
    yield request.param, telemetry
    telemetry.shutdown()


def reference(tracer: trace.Tracer, traceparent: str | None, tracestate: str | None = None
              ) -> trace.Span:
    return tracer.start_span(f"{TOPIC} apply", context=remote_parent(traceparent, tracestate),
                             kind=SpanKind.CONSUMER)


@pytest.mark.parametrize("flags", ["00", "01", "02", "03", "05", "fe", "ff"])
def test_a_child_of_the_header_is_the_span_the_tracer_would_start(
    unrecorded: tuple[str, Telemetry], flags: str
) -> None:
    name, telemetry = unrecorded
    tracer = telemetry.tracer
    for _ in range(20):
        given = header(flags)
        span = start_consumer_span(tracer, TOPIC, given, None)
        expected = reference(tracer, given).get_span_context()
        made = span.get_span_context()
        assert made.trace_id == expected.trace_id == int(given.split("-")[1], 16)
        assert made.trace_flags == expected.trace_flags
        assert made.trace_state == expected.trace_state
        assert not made.is_remote and made.is_valid
        assert made.span_id != int(given.split("-")[2], 16)
        assert not span.is_recording()
        assert traceparent_of(span) == (
            f"00-{made.trace_id:032x}-{made.span_id:016x}-{made.trace_flags:02x}")
        # The parent-based samplers decide by the parent's flag: the quick path is theirs.
        assert isinstance(span, ChildSpan) == name.startswith("parentbased_")


@pytest.mark.parametrize("given", [
    None, "", "not a traceparent", f"00-{'0' * 32}-{'1' * 16}-01", f"00-{'1' * 32}-{'0' * 16}-01",
    f"ff-{'1' * 32}-{'1' * 16}-01", f"00-{'1' * 32}-{'1' * 16}-01-extra",
    f"01-{'1' * 32}-{'1' * 16}-01-extra", f"00-{'A' * 32}-{'1' * 16}-01",
])
def test_a_header_the_quick_path_does_not_read_goes_to_the_tracer(given: str | None) -> None:
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    assert tracer.remote_child(given) is None
    span = start_consumer_span(tracer, TOPIC, given, None)
    expected = reference(tracer, given).get_span_context()
    made = span.get_span_context()
    assert made.is_valid and made.trace_flags == expected.trace_flags
    if given and given.startswith("01-"):  # a later version: its parent is read and followed
        assert made.trace_id == int("1" * 32, 16)
    else:  # not valid: a new trace
        assert made.trace_id != int("1" * 32, 16)


@pytest.mark.parametrize("padding", [(" ", ""), ("\t", " "), ("", "\t")])
def test_a_header_padded_with_blanks_is_read_as_the_propagator_reads_it(
    padding: tuple[str, str],
) -> None:
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    given = header("01")
    span = start_consumer_span(tracer, TOPIC, padding[0] + given + padding[1], None)
    assert isinstance(span, ChildSpan)
    assert span.get_span_context().trace_id == int(given.split("-")[1], 16)
    assert span.get_span_context().trace_flags == reference(
        tracer, padding[0] + given + padding[1]).get_span_context().trace_flags


def test_a_tracestate_goes_to_the_tracer_and_is_carried() -> None:
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    given = header()
    span = start_consumer_span(tracer, TOPIC, given, "congo=t61rcWkgMzE")
    assert not isinstance(span, ChildSpan)
    assert span.get_span_context().trace_state.get("congo") == "t61rcWkgMzE"
    assert span.get_span_context().trace_id == int(given.split("-")[1], 16)


def test_a_parent_based_sampler_with_other_delegates_is_asked() -> None:
    """Only the SDK's parent-based samplers with their default delegates for a remote parent
    let the parent's flag decide; any other is asked, as `start_span` asks it."""
    never_for_remote = ParentBased(ALWAYS_ON, remote_parent_sampled=TraceIdRatioBased(0.0))
    tracer = UnrecordedTracer(never_for_remote, TracerProvider().id_generator)
    assert tracer.remote_child(header("01")) is None
    span = start_consumer_span(tracer, TOPIC, header("01"), None)
    assert not span.get_span_context().trace_flags.sampled

    class DecidesItself(ParentBased):
        def should_sample(self, *args: Any, **kwargs: Any) -> Any:
            return ALWAYS_OFF.should_sample(*args, **kwargs)

    tracer = UnrecordedTracer(DecidesItself(ALWAYS_ON), TracerProvider().id_generator)
    assert tracer.remote_child(header("01")) is None
    assert not start_consumer_span(tracer, TOPIC, header("01"), None).get_span_context(
    ).trace_flags.sampled


def test_under_the_sdks_tracer_the_span_records_and_continues_the_trace() -> None:
    provider = TracerProvider(sampler=SamplerSetting("parentbased_always_on").sampler())
    tracer = provider.get_tracer("test")
    given = header("01")
    span = start_consumer_span(tracer, TOPIC, given, None)
    assert span.is_recording() and not isinstance(span, ChildSpan)
    assert span.get_span_context().trace_id == int(given.split("-")[1], 16)
    span.end()


def test_as_the_current_span_a_child_hands_its_context_on() -> None:
    tracer = UnrecordedTracer(DEFAULT_ON, TracerProvider().id_generator)
    span = start_consumer_span(tracer, TOPIC, header("01"), None)
    assert isinstance(span, ChildSpan)
    with trace.use_span(span):
        current = trace.get_current_span()
        assert traceparent_of(current) == span.traceparent
        assert current.get_span_context() == span.get_span_context()
