"""A broken business rule: which field, and why, in words that never repeat the input."""

from __future__ import annotations

from typing import NamedTuple


class RuleBroken(NamedTuple):
    field: str
    problem: str
