"""A list column of a batch's rows as one flat SQL array with each row's bounds, for statements
that take the rest of their rows as JSON (`eventcore.db.json_rows`).

For fixed-width elements (uuid, int) only: a slice of those is found by its offset. JSON arrays
converted by `json_to_recordset` into uuid[] cost priority's statement ≈ 7 µs per row in
PostgreSQL, a slice of one flat uuid[] almost nothing; slices of a text[] cost more than JSON
arrays (docs/performance.md finding 66)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Flat(list[Any]):
    """One row's list after another, as one SQL array (SQL arrays cannot be ragged), with each
    row's slice bounds in `starts` and `ends` (1-based, inclusive; an empty list gives an empty
    slice), for `(flat)[start:end]` in the statement."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, items: Iterable[Any]) -> None:
        self.starts.append(len(self) + 1)
        self.extend(items)
        self.ends.append(len(self))
