"""Insights for partners: the latest revision of each, filtered; one insight with its history."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from contracts.fields import CATEGORY_CODE_PATTERN, PSEUDONYMOUS_ID_PATTERN
from services.insight.views.paging import Page, Where, page_of


class InsightFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str | None = Field(default=None, pattern=CATEGORY_CODE_PATTERN,
                                 description="Enquiry category code.")
    conversation_id: UUID | None = Field(default=None,
                                         description="Only insights citing this conversation.")
    partner_id: str | None = Field(default=None, pattern=PSEUDONYMOUS_ID_PATTERN,
                                   description="Only insights this partner first drafted.")
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class InsightSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    insight_id: UUID
    revision: int = Field(description="Latest revision, from 1.")
    statement: str
    category: str
    conversation_ids: list[UUID]
    partner_id: str = Field(description="Who wrote the latest revision.")
    drafted_by: str = Field(description="Who wrote revision 1.")
    drafted_at: datetime
    revised_at: datetime


class InsightRevision(BaseModel):
    model_config = ConfigDict(frozen=True)

    revision: int
    statement: str
    category: str
    conversation_ids: list[UUID]
    partner_id: str
    event_id: UUID = Field(description="The InsightDrafted event of this revision.")
    causation_ids: list[str] = Field(description="ConversationLogged event ids it rests on.")
    recorded_at: datetime


class InsightDetail(InsightSummary):
    revisions: list[InsightRevision] = Field(description="Every revision, oldest first.")
    erased_conversation_ids: list[UUID] = Field(
        description="Cited conversations (latest revision) whose participant has since been "
        "erased; a new revision must leave them out.")


InsightPage = Page[InsightSummary]

_COLUMNS = """insight_id, revision, statement, category, conversation_ids, partner_id, drafted_by,
    drafted_at, revised_at"""


async def list_insights(conn: asyncpg.Connection, f: InsightFilter) -> InsightPage:
    where = Where()
    if f.category:
        where.add(f"category = {where.arg(f.category)}")
    if f.conversation_id:
        where.add(f"{where.arg(f.conversation_id)}::uuid = ANY (conversation_ids)")
    if f.partner_id:
        where.add(f"drafted_by = {where.arg(f.partner_id)}")
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM insights WHERE {where.sql} ORDER BY revised_at DESC, insight_id"
        f" LIMIT {where.arg(f.limit + 1)} OFFSET {where.arg(f.offset)}",
        *where.args,
    )
    items, next_offset = page_of(rows, InsightSummary, f.limit, f.offset)
    return InsightPage(items=items, limit=f.limit, offset=f.offset, next_offset=next_offset)


async def get_insight(conn: asyncpg.Connection, insight_id: UUID) -> InsightDetail | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM insights WHERE insight_id = $1", insight_id)
    if row is None:
        return None
    revisions = await conn.fetch(
        """SELECT revision, statement, category, conversation_ids, partner_id, event_id,
                  causation_ids, recorded_at
             FROM insight_revisions WHERE insight_id = $1 ORDER BY revision""", insight_id)
    erased = await conn.fetch(
        "SELECT conversation_id FROM conversations WHERE erased AND conversation_id = ANY($1)"
        " ORDER BY conversation_id", row["conversation_ids"])
    return InsightDetail.model_validate({
        **dict(row),
        "revisions": [dict(r) for r in revisions],
        "erased_conversation_ids": [r["conversation_id"] for r in erased],
    })
