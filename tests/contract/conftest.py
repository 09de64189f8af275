"""Fixtures for contract tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contracts import Envelope

from .builders import conversation_draft, sequence_all


@pytest.fixture
def make_chain() -> Callable[..., list[Envelope[Any]]]:
    def make(length: int, source: str = "intake") -> list[Envelope[Any]]:
        return sequence_all(conversation_draft(source) for _ in range(length))

    return make
