"""The inbox's key, (event_id, consumer), on a real PostgreSQL: a deployment migrated from the
old key keeps its rows, claims stay once per event and consumer, and the lineage lookup by event
id reads the key instead of an index of its own (docs/performance.md finding 52)."""

from __future__ import annotations

import hashlib
from importlib import resources
from uuid import UUID, uuid4

import asyncpg
import pytest

from eventcore.db import migrate
from eventcore.embedded import StackEndpoints
from eventcore.inbox import claim_many
from eventcore.lineage import _LOOKUP
from tests.conftest import create_database

pytestmark = pytest.mark.integration
SCHEMA = "inboxkey"


class _Claimed:
    """What claim_many reads of an event."""

    def __init__(self, event_id: UUID, sequence: int) -> None:
        self.id, self.type, self.source, self.sequence = event_id, "ConsentChanged", "intake", sequence


async def _old_deployment(url: str) -> None:
    """A schema as the core migrations up to 002 left it, with schema_migrations saying so."""
    core = resources.files("eventcore") / "sql"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {SCHEMA}; SET search_path TO {SCHEMA}")
        await conn.execute("CREATE TABLE schema_migrations (name text PRIMARY KEY,"
                           " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for name in ("001_core.sql", "002_inbox_trace.sql"):
            sql = (core / name).read_text(encoding="utf-8")
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                               f"sql/{name}", hashlib.sha256(sql.encode()).hexdigest())
    finally:
        await conn.close()


async def test_an_inbox_keyed_the_old_way_keeps_its_rows_and_claims_once_per_consumer(
    endpoints: StackEndpoints,
) -> None:
    url = await create_database(endpoints)
    await _old_deployment(url)
    seen = [_Claimed(uuid4(), n) for n in range(1, 6)]
    conn = await asyncpg.connect(url, server_settings={"search_path": SCHEMA})
    try:
        assert await claim_many(conn, "priority", seen, ["00-" + "1" * 32 + "-" + "2" * 16 + "-01"]
                                * len(seen)) == {e.id for e in seen}
        await migrate(url, SCHEMA, [], source="intake")

        key = await conn.fetchval(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " WHERE i.indrelid = 'inbox'::regclass AND i.indisprimary")
        assert key is not None and key.endswith("(event_id, consumer)")
        others = await conn.fetchval("SELECT count(*) FROM pg_index i"
                                     " WHERE i.indrelid = 'inbox'::regclass AND NOT i.indisprimary")
        assert others == 0  # one index written per claim, not two

        # What was claimed before stays claimed; another consumer of the same events is fresh.
        fresh = [_Claimed(uuid4(), 6)]
        again = await claim_many(conn, "priority", [*seen, *fresh], [None] * 6)
        assert again == {fresh[0].id}
        assert await claim_many(conn, "feedback", seen, [None] * 5) == {e.id for e in seen}
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 11
    finally:
        await conn.close()


async def test_the_lineage_lookup_reads_the_inbox_by_its_key(endpoints: StackEndpoints) -> None:
    url = await create_database(endpoints)
    await migrate(url, SCHEMA, [], source="intake")
    conn = await asyncpg.connect(url, server_settings={"search_path": SCHEMA})
    try:
        rows = [_Claimed(uuid4(), n) for n in range(1, 2_001)]
        await claim_many(conn, "priority", rows, ["00-" + "a" * 32 + "-" + "b" * 16 + "-01"]
                         * len(rows))
        await conn.execute("ANALYZE inbox")
        plan = "\n".join(r[0] for r in await conn.fetch(
            f"EXPLAIN {_LOOKUP}", [rows[7].id, uuid4()]))
        assert "inbox_pkey" in plan and "Seq Scan on inbox" not in plan, plan
        found = await conn.fetch(_LOOKUP, [rows[7].id])
        assert found[0]["traceparent"] == "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    finally:
        await conn.close()
