"""Conversations for partners: filtered by category, place, dates and equity group; paged.

Summaries are shown; quotes stay sealed (insight holds no keys), so only their number is.
Conversations whose participant was erased are hidden unless asked for, and then show no
summary or equity answers.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from contracts.fields import CATEGORY_CODE_PATTERN, PLAIN_TEXT_PATTERN
from services.insight.views.paging import Page, Where, page_of

EquityField = Literal["age_band", "ethnicity", "gender", "disability", "language", "area"]


class ConversationFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str | None = Field(default=None, pattern=CATEGORY_CODE_PATTERN,
                                 description="Enquiry category code the conversation touched.")
    place: str | None = Field(default=None, min_length=1, max_length=120,
                              pattern=PLAIN_TEXT_PATTERN,
                              description="Place name (case-insensitive, exact).")
    held_from: date | None = Field(default=None, description="Held on or after this day.")
    held_to: date | None = Field(default=None, description="Held on or before this day.")
    equity_field: EquityField | None = Field(
        default=None, description="Equity question to filter on; give with equity_value.")
    equity_value: str | None = Field(default=None, min_length=1, max_length=64,
                                     pattern=PLAIN_TEXT_PATTERN,
                                     description="Self-described answer (case-insensitive).")
    include_erased: bool = Field(default=False, description="Also list erased conversations.")
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


def filter_problems(f: ConversationFilter) -> list[tuple[str, str]]:
    """Rules across query fields; each names the field and never repeats the value."""
    problems = []
    if (f.equity_field is None) != (f.equity_value is None):
        missing = "equity_value" if f.equity_value is None else "equity_field"
        problems.append((missing, "equity_field and equity_value must be given together"))
    if f.held_from and f.held_to and f.held_to < f.held_from:
        problems.append(("held_to", "must not be before held_from"))
    return problems


class ConversationView(BaseModel):
    model_config = ConfigDict(frozen=True)

    conversation_id: UUID
    event_id: UUID = Field(description="The ConversationLogged event id (what insights cite).")
    held_on: date
    setting: str
    place: str
    categories: list[str]
    categories_version: int
    summary: str | None = Field(description="Plain-language summary; null once erased.")
    quote_count: int = Field(description="Quotes held sealed in intake; never opened here.")
    support_shared: list[str]
    equity: dict[str, str] | None = Field(description="Self-described equity answers, if any.")
    erased: bool
    logged_at: datetime


ConversationPage = Page[ConversationView]

_COLUMNS = """conversation_id, event_id, held_on, setting, place, categories, categories_version,
    summary, quote_count, support_shared, equity, erased, logged_at"""


async def list_conversations(conn: asyncpg.Connection, f: ConversationFilter) -> ConversationPage:
    where = Where()
    if f.category:
        # Containment, which the GIN index on categories answers (`= ANY` it cannot).
        where.add(f"categories @> ARRAY[{where.arg(f.category)}::text]")
    if f.place:
        where.add(f"lower(place) = lower({where.arg(f.place)})")
    if f.held_from:
        where.add(f"held_on >= {where.arg(f.held_from)}")
    if f.held_to:
        where.add(f"held_on <= {where.arg(f.held_to)}")
    if f.equity_field and f.equity_value:
        where.add(f"lower(equity ->> {where.arg(f.equity_field)}) = lower({where.arg(f.equity_value)})")
    if not f.include_erased:
        where.add("NOT erased")
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM conversations WHERE {where.sql}"
        f" ORDER BY held_on DESC, conversation_id"
        f" LIMIT {where.arg(f.limit + 1)} OFFSET {where.arg(f.offset)}",
        *where.args,
    )
    items, next_offset = page_of(rows, ConversationView, f.limit, f.offset)
    return ConversationPage(items=items, limit=f.limit, offset=f.offset, next_offset=next_offset)


async def get_conversation(conn: asyncpg.Connection, conversation_id: UUID) -> ConversationView | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM conversations WHERE conversation_id = $1", conversation_id)
    return None if row is None else ConversationView.model_validate(dict(row))
