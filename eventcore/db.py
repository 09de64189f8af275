"""Connection pools and migrations. Each service owns one PostgreSQL schema."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from uuid import UUID

import asyncpg
import orjson

log = logging.getLogger(__name__)

_SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CORE_MIGRATIONS = resources.files("eventcore") / "sql"


def _json_text(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def json_rows(rows: Sequence[Mapping[str, object]]) -> str:
    """A batch's rows as one JSON array of objects, for `json_to_recordset($n::text::json) AS
    r(column type, ...)` (keys named as the columns: a key missing reads as NULL, so test that
    every column arrives; UUIDs, dates and datetimes as orjson writes them, lists as JSON arrays
    for array columns). Datetimes must be aware: a naive one would be read in the session's
    time zone. One text parameter for the whole batch: asyncpg encodes an array parameter
    element by element, ≈ 2.3 µs of client CPU per row of six columns against ≈ 0.9 µs for
    this (docs/performance.md finding 66). Text, not json, so that it reads the same on a
    connection with or without the pool's json codec."""
    return orjson.dumps(rows, default=_uuid_text).decode()


def _uuid_text(value: object) -> str:
    """orjson writes uuid.UUID itself, but not its subclasses, such as the UUIDs asyncpg reads."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


async def _init_connection(conn: asyncpg.Connection) -> None:
    # orjson: five to fifteen times quicker than the json module both ways; every event the
    # relay publishes and every read model's JSON goes through here.
    for codec in ("json", "jsonb"):
        await conn.set_type_codec(
            codec, encoder=_json_text, decoder=orjson.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`): a round trip on every release, for state pool connections never hold. Nothing
    on a pool connection LISTENs, takes a session advisory lock or SETs session state (the
    relay's listener and leader lock and `migrate` use connections of their own; advisory locks
    taken on pool connections are transaction-scoped). asyncpg still rolls back an open
    transaction before this runs."""


async def create_pool(
    database_url: str, schema: str, *, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections see only `schema` (then `public`)."""
    _check_schema(schema)
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": f"{schema}, public", "application_name": schema},
        init=_init_connection,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


def _check_schema(schema: str) -> None:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema: {schema!r} is not a valid schema name")


def _read_migrations(folders: Sequence[Path | resources.abc.Traversable]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for folder in folders:
        files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
        found.extend((f"{folder.name}/{f.name}", f.read_text(encoding="utf-8")) for f in files)
    return found


async def migrate(
    database_url: str,
    schema: str,
    folders: Sequence[Path | resources.abc.Traversable],
    *,
    source: str,
) -> None:
    """Create `schema`, apply the core tables and then the service's migrations, once each.

    Runs under an advisory lock so that several instances starting together apply each file once.
    """
    _check_schema(schema)
    conn = await asyncpg.connect(database_url)
    try:
        lock_key = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True)
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(f"SET search_path TO {schema}, public")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = {
                r["name"]: r["checksum"]
                for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")
            }
            for name, sql in _read_migrations([CORE_MIGRATIONS, *folders]):
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if name in applied:
                    if applied[name] != checksum:
                        log.warning("migration %s changed after it was applied", name)
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                        name,
                        checksum,
                    )
                log.info("applied migration %s to schema %s", name, schema)
            await conn.execute(
                "INSERT INTO source_head (source, sequence, prev_hash, hash)"
                " VALUES ($1, 0, $2, $2) ON CONFLICT (source) DO NOTHING",
                source,
                bytes(32),
            )
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()


async def wait_for_database(database_url: str, *, attempts: int = 60, delay_s: float = 0.5) -> None:
    """Bounded back-off until PostgreSQL accepts connections."""
    for attempt in range(1, attempts + 1):
        try:
            conn = await asyncpg.connect(database_url, timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            if attempt == attempts:
                raise
            await asyncio.sleep(min(delay_s * attempt, 5.0))
        else:
            await conn.close()
            return
