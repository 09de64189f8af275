"""Listing conversations by category (intake's and insight's read sides) is answered by the GIN
index on `categories`: the filter is containment (`@>`), which that index serves, where
`= ANY (categories)` made every such listing read the whole table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from eventcore.db import migrate
from services.insight.bootstrap import MIGRATIONS as INSIGHT_MIGRATIONS
from services.insight.views.conversations import ConversationFilter as InsightFilter
from services.insight.views.conversations import list_conversations as insight_list
from services.intake.bootstrap import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.views import ConversationFilter as IntakeFilter
from services.intake.views import list_conversations as intake_list

CATEGORIES = (["cultural_factors"], ["community_support", "cultural_factors"],
              ["community_support"], ["clinical_and_social_help"])


# One conversation per entry of CATEGORIES, held on 1, 2, 3... January: $1 id, $2 event id,
# $3 sequence, $4 held on, $5 categories.
_INTAKE_ROW = (
    "INSERT INTO conversations (conversation_id, event_id, sequence, participant_id,"
    " listener_id, held_on, setting, place, categories, summary, quotes, support_shared,"
    " consent, logged_at) VALUES ($1, $2, $3, 'p_abcdefgh12', 'listener_1', $4, 'café',"
    " 'Hackney', $5, 'A summary.', '[]', '{}', '{}', now())")
_INSIGHT_ROW = (
    "INSERT INTO conversations (conversation_id, event_id, source, source_sequence,"
    " participant_id, held_on, setting, place, categories, categories_version, summary,"
    " quote_count, support_shared, logged_at) VALUES ($1, $2, 'intake', $3, 'p_abcdefgh12',"
    " $4, 'café', 'Hackney', $5, 1, 'A summary.', 0, '{}', now())")


async def _insert(conn: asyncpg.Connection, row: str) -> None:
    await conn.executemany(
        row, [(uuid4(), uuid4(), n + 1, date(2025, 1, n + 1), c) for n, c in enumerate(CATEGORIES)])


async def _intake_listed(conn: asyncpg.Connection, category: str) -> list[date]:
    return [r["held_on"] for r in await intake_list(conn, IntakeFilter(category=category))]


async def _insight_listed(conn: asyncpg.Connection, category: str) -> list[date]:
    page = await insight_list(conn, InsightFilter(category=category))
    return [item.held_on for item in page.items]


Side = tuple[str, Any, str, Callable[[asyncpg.Connection, str], Awaitable[list[date]]]]
SIDES: list[Side] = [("intake", INTAKE_MIGRATIONS, _INTAKE_ROW, _intake_listed),
                     ("insight", INSIGHT_MIGRATIONS, _INSIGHT_ROW, _insight_listed)]


@pytest.mark.parametrize("side", SIDES, ids=[s[0] for s in SIDES])
async def test_a_category_listing_is_answered_by_the_categories_index(
        database_url: str, side: Side) -> None:
    schema, migrations, row, listed = side
    await migrate(database_url, schema, [migrations], source=schema)
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    plans: list[str] = []
    try:
        await _insert(conn, row)
        assert await listed(conn, "cultural_factors") == [date(2025, 1, 2), date(2025, 1, 1)]
        assert await listed(conn, "community_support") == [date(2025, 1, 3), date(2025, 1, 2)]
        assert await listed(conn, "peer_support") == []
        # The plan of each statement, sent to this client (auto_explain at NOTICE); with
        # sequential and plain index scans off, only an index that answers the filter is used.
        conn.add_log_listener(lambda _, message: plans.append(message.message))
        await conn.execute("LOAD 'auto_explain'")
        await conn.execute("SET auto_explain.log_min_duration = 0;"
                           " SET auto_explain.log_level = notice;"
                           " SET enable_seqscan = off; SET enable_indexscan = off")
        assert await listed(conn, "cultural_factors") == [date(2025, 1, 2), date(2025, 1, 1)]
    finally:
        await conn.close()
    listing = [plan for plan in plans if "conversations" in plan]
    assert listing, plans
    assert any("Bitmap Index Scan on conversations_categories" in plan for plan in listing), \
        listing
