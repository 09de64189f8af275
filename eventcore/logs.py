"""Structured JSON logs carrying the service, trace and span ids; never personal data
(callers log ids, types and counts, not values)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

#: Ids of what is being handled now (event id, correlation id), added to every log line.
_LOG_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar(
    "gt_log_context", default=MappingProxyType({}))  # read-only: never mutated, only replaced


@contextmanager
def log_context(**ids: str) -> Iterator[None]:
    """Within this block every log line carries these ids (never put values of personal data)."""
    token = _LOG_CONTEXT.set({**_LOG_CONTEXT.get(), **ids})
    try:
        yield
    finally:
        _LOG_CONTEXT.reset(token)


class _TraceContext(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        for key, value in _LOG_CONTEXT.get().items():
            setattr(record, key, value)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def configure_logging(
    service: str, level: int = logging.INFO, *, stream: object = None
) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    ))
    handler.addFilter(_TraceContext(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faststream.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
