"""Rows sent to PostgreSQL as one array per column (`unnest`), for statements that write a whole
batch at once instead of one row per round trip or per Bind (asyncpg's executemany)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Flat(list[Any]):
    """A list column: one row's list after another, as one SQL array (SQL arrays cannot be
    ragged); each row's slice bounds (1-based, inclusive; an empty list gives an empty slice) go
    to `starts` and `ends`, for `(flat)[start:end]` in the statement."""

    def add(self, items: Iterable[Any], starts: list[int], ends: list[int]) -> None:
        starts.append(len(self) + 1)
        self.extend(items)
        ends.append(len(self))
