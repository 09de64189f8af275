"""Rows sent to PostgreSQL as one array per column (`unnest`), for statements that write a whole
batch at once instead of one row per round trip or per Bind (asyncpg's executemany)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Flat(list[Any]):
    """A list column: one row's list after another, as one SQL array (SQL arrays cannot be
    ragged), with each row's slice bounds in `starts` and `ends` (1-based, inclusive; an empty
    list gives an empty slice), for `(flat)[start:end]` in the statement."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, items: Iterable[Any]) -> None:
        self.starts.append(len(self) + 1)
        self.extend(items)
        self.ends.append(len(self))
