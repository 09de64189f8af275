"""Where the running stack can be reached, as values and as GT_ environment variables."""

from __future__ import annotations

from dataclasses import dataclass


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
