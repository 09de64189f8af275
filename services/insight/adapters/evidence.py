"""The cited conversations, as the read model knows them, locked for the drafting transaction."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from services.insight.domain.rules import MAX_CITED, Evidence


async def load_evidence(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, Evidence]:
    """Known cited conversations by id. FOR SHARE: an erasure consumed meanwhile waits for the
    insight to commit (and then marks the conversation), so nothing erased is cited unseen.
    Rows are locked in id order, the same order the erasure uses, so the two cannot deadlock."""
    if not ids or len(ids) > MAX_CITED:
        return {}
    rows = await conn.fetch(
        "SELECT conversation_id, event_id, categories, erased FROM conversations"
        " WHERE conversation_id = ANY($1::uuid[]) ORDER BY conversation_id FOR SHARE",
        sorted(set(ids)),
    )
    return {
        r["conversation_id"]: Evidence(conversation_id=r["conversation_id"], event_id=r["event_id"],
                                       categories=tuple(r["categories"]), erased=r["erased"])
        for r in rows
    }
