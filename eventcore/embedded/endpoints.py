"""Where the running stack can be reached, as values and as GT_ environment variables."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class StackEndpoints:
    kafka_bootstrap_servers: str
    database_url: str
    # Tansu rejects InitProducerId, so the idempotent producer is off against it.
    kafka_enable_idempotence: bool
    # Tansu answers a waiting fetch only when the wait ends, so a short wait keeps latency low.
    kafka_fetch_max_wait_ms: int

    def as_env(self) -> dict[str, str]:
        """The settings another process needs to use this stack instead of starting its own."""
        return {
            "GT_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "GT_DATABASE_URL": self.database_url,
            "GT_KAFKA_ENABLE_IDEMPOTENCE": "true" if self.kafka_enable_idempotence else "false",
            "GT_KAFKA_FETCH_MAX_WAIT_MS": str(self.kafka_fetch_max_wait_ms),
        }

    async def new_database(self, prefix: str) -> str:
        """A fresh, empty database on the stack's server (its own schemas, inboxes, stores);
        returns its URL."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
        base, _, _ = self.database_url.rpartition("/")
        return f"{base}/{name}"
