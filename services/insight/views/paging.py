"""Offset paging shared by the list views: one extra row fetched tells whether there is more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(BaseModel, Generic[ItemT]):
    model_config = ConfigDict(frozen=True)

    items: list[ItemT]
    limit: int = Field(description="Most items asked for.")
    offset: int = Field(description="Items skipped.")
    next_offset: int | None = Field(description="Offset of the next page; null on the last page.")


class Where:
    """WHERE clauses with numbered parameters, so no value is ever spliced into SQL."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "true"


def page_of(
    rows: Sequence[Any], model: type[ItemT], limit: int, offset: int
) -> tuple[list[ItemT], int | None]:
    items = [model.model_validate(dict(r)) for r in rows[:limit]]
    return items, (offset + limit if len(rows) > limit else None)
