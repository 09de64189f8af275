"""What a service holds, as one comparable value: its store head and the content of every table
an HTTP request can write (tables only consumers, the relay or the scheduler write are left out,
because those run in the background while the hostile requests arrive)."""

from __future__ import annotations

import fnmatch
from typing import Any

import asyncpg

#: Written by background work, not by HTTP requests.
BACKGROUND_TABLES: dict[str, tuple[str, ...]] = {
    "*": ("outbox_cursor", "inbox", "inbox_*", "schema_migrations", "migrations"),
    "intake": (),
    "insight": ("conversations", "erased_participants"),
    "priority": ("insights",),
    "feedback": ("received_facts", "graph_*", "notifications"),
}


async def http_tables(pool: asyncpg.Pool, service: str) -> list[str]:
    async with pool.acquire() as conn:
        names = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " ORDER BY tablename")]
    skip = BACKGROUND_TABLES["*"] + BACKGROUND_TABLES[service]
    return [n for n in names if not any(fnmatch.fnmatch(n, p) for p in skip)]


class Snapshot:
    """One round trip: (count, md5 of the rows) per table; the event store by its head."""

    def __init__(self, pool: asyncpg.Pool, tables: list[str]) -> None:
        self._pool = pool
        parts = []
        for name in tables:
            if name == "events":
                parts.append("SELECT 'events' AS t, count(*)::text || ':' || "
                             "coalesce(max(sequence), 0)::text AS v FROM events")
            else:
                parts.append(f"SELECT '{name}' AS t, count(*)::text || ':' || md5(coalesce("
                             f"string_agg(x::text, '|' ORDER BY x::text), '')) AS v FROM {name} x")
        self._sql = " UNION ALL ".join(parts)

    async def take(self) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            return {r["t"]: r["v"] for r in await conn.fetch(self._sql)}
