"""The trace sampler a deployment's settings select, read as a service reads them at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from eventcore.telemetry import TRACE_SAMPLERS, sampler_description

VARIABLES = ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")


def sampler_selected_by(settings: Mapping[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """The description of the sampler `settings` select ('parentbased_traceidratio 0.1'); a value
    a service would refuse raises its TelemetryConfigError. The sampler must be named: the default
    applies silently otherwise, and a reader of the file would not see the knob."""
    name = settings.get("OTEL_TRACES_SAMPLER")
    assert name in TRACE_SAMPLERS, f"OTEL_TRACES_SAMPLER {name!r}: one of {sorted(TRACE_SAMPLERS)}"
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
        if variable in settings:
            monkeypatch.setenv(variable, str(settings[variable]))
    return sampler_description()
