"""Read side: conversations for listeners and partners, filtered; quotes opened only on request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from contracts import Sealed
from contracts.fields import CATEGORY_CODE_PATTERN, PARTICIPANT_ID_PATTERN, PLAIN_TEXT_PATTERN
from services.intake.adapters.vault import Vault

ERASED = "[erased]"


class ConversationFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str | None = Field(default=None, max_length=64, pattern=CATEGORY_CODE_PATTERN)
    place: str | None = Field(default=None, max_length=120, pattern=PLAIN_TEXT_PATTERN)
    participant_id: str | None = Field(default=None, max_length=64,
                                       pattern=PARTICIPANT_ID_PATTERN)
    held_from: date | None = None
    held_to: date | None = None
    include_erased: bool = False
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


_COLUMNS = """conversation_id, participant_id, listener_id, held_on, setting, place, categories,
    summary, jsonb_array_length(quotes) AS quote_count, support_shared, consent, equity, erased,
    logged_at, sequence"""


def _row(r: asyncpg.Record) -> dict[str, Any]:
    return dict(r.items())  # (iterating a Record gives its values, not its keys)


async def list_conversations(conn: asyncpg.Connection, f: ConversationFilter) -> list[dict[str, Any]]:
    clauses, args = [], []  # type: list[str], list[Any]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.category:
        # Containment, which the GIN index on categories answers (`= ANY` it cannot).
        clauses.append(f"categories @> ARRAY[{arg(f.category)}::text]")
    if f.place:
        clauses.append(f"lower(place) = lower({arg(f.place)})")
    if f.participant_id:
        clauses.append(f"participant_id = {arg(f.participant_id)}")
    if f.held_from:
        clauses.append(f"held_on >= {arg(f.held_from)}")
    if f.held_to:
        clauses.append(f"held_on <= {arg(f.held_to)}")
    if not f.include_erased:
        clauses.append("NOT erased")
    where = " AND ".join(clauses) or "true"
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM conversations WHERE {where}"
        f" ORDER BY held_on DESC, sequence DESC LIMIT {arg(f.limit)} OFFSET {arg(f.offset)}",
        *args,
    )
    return [_row(r) for r in rows]


async def get_conversation(
    conn: asyncpg.Connection, vault: Vault, conversation_id: UUID,
    *, may_open_quotes: Callable[[str], bool],
) -> dict[str, Any] | None:
    """`may_open_quotes(listener_id)` decides whether this caller sees the person's own words;
    if not, they stay sealed (never decrypted) and the answer says they were withheld."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, quotes FROM conversations WHERE conversation_id = $1", conversation_id
    )
    if row is None:
        return None
    found = _row(row)
    if not may_open_quotes(found["listener_id"]):
        found.pop("quotes")
        return {**found, "quotes": None, "quotes_withheld": True}
    sealed = [Sealed.model_validate(q) for q in found.pop("quotes")]
    opened = [await vault.open(conn, found["participant_id"], s) for s in sealed]
    found["quotes"] = [ERASED if q is None else q for q in opened]
    found["quotes_withheld"] = False
    return found
