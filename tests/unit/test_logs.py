"""Log lines are JSON carrying the service, the ids being handled and the trace, nothing else."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from eventcore.logs import configure_logging, log_context


def test_a_log_line_is_json_with_service_event_correlation_and_trace_ids() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("intake", stream=out)
        tracer = TracerProvider().get_tracer("test")
        with tracer.start_as_current_span("handle") as span, \
                log_context(event_id="e-1", correlation_id="c-1"):
            logging.getLogger("eventcore.consumer").info("applied %s", "ConversationLogged")
        logging.getLogger("eventcore.consumer").info("outside")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["service"] == "intake" and first["message"] == "applied ConversationLogged"
    assert first["event_id"] == "e-1" and first["correlation_id"] == "c-1"
    assert first["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert first["level"] == "INFO" and first["logger"] == "eventcore.consumer"
    assert "event_id" not in second and "trace_id" not in second
