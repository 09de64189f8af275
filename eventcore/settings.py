"""Settings shared by every service, read from the environment (prefix ``GT_``).

When ``GT_KAFKA_BOOTSTRAP_SERVERS`` / ``GT_DATABASE_URL`` are unset, the embedded stack
(``eventcore.embedded``) supplies them; when they are set, nothing is started.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GT_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset means start the embedded broker."
    )
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset means start the embedded PostgreSQL."
    )
    kafka_enable_idempotence: bool = Field(
        default=True,
        description="Idempotent producer. On for Apache Kafka; the embedded Tansu broker "
        "rejects InitProducerId, so the embedded stack turns it off (the inbox keeps "
        "effects exactly-once either way).",
    )
    kafka_max_batch_bytes: int = Field(
        default=16_384, ge=1_024, le=1_000_000,
        description="Largest record batch a producer builds per partition (aiokafka's "
        "max_batch_size; 16 KiB as Kafka's batch.size, about ten of our envelopes). A full batch "
        "waits for its partition's request in flight, so a relay catching up sends 16 KiB per "
        "round trip: 256 KiB made catching up 30,000 events ≈ 20 % quicker, at ≈ 20 % less "
        "CPU per event (docs/performance.md, finding 58). Keep it under the broker's "
        "message.max.bytes (1 MB by default). The bench's raw producer uses it too.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=500,
        ge=1,
        le=30_000,
        description="Consumer fetch wait. Tansu does not answer a waiting fetch early, so "
        "consumer latency follows this value; the embedded stack uses 10 ms.",
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000, ge=1_000,
        description="Consumer group session timeout. A consumer that dies is noticed after this; "
        "Tansu never sees a clean leave from generation 0, so tests use a short one.",
    )
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    kafka_metadata_max_age_ms: int = Field(
        default=30_000, ge=1_000,
        description="How often clients refresh topic metadata, so how soon consumers and the "
        "relay see partitions added to a topic (Kafka's default is 5 min). Tansu creates a "
        "topic a client asks about with 4 partitions, which can happen in the moment after an "
        "embedded broker restarts, before the stack creates its own.",
    )
    topic_partitions: int = Field(default=3, ge=1, description="Partitions per topic created.")
    topic_replication_factor: int = Field(default=1, ge=1)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_max_in_flight: int = Field(
        default=1, ge=1, le=16,
        description="Batches the relay has sent and the broker not yet acknowledged (1: each "
        "waits for the last's acks). 2 caught up a backlog 8-10 % quicker, but on the embedded "
        "broker it wrote smaller record batches, which Tansu reads slower: end-to-end p50 "
        "≈ 9 ms worse (docs/performance.md, finding 62).",
    )
    relay_poll_interval_s: float = Field(
        default=1.0, gt=0, description="Outbox relay polling fallback when no NOTIFY arrives."
    )
    relay_broker_check_interval_s: float = Field(
        default=5.0, gt=0,
        description="How often the relay checks that the broker still holds what it published "
        "(an in-memory broker loses it on restart; the relay then re-publishes from its store).",
    )
    consumer_batch_max_records: int = Field(
        default=2_000, ge=1, le=10_000,
        description="Most messages a consumer applies in one transaction (one inbox statement, "
        "one offset commit). 1 means one message per transaction. Batches this large happen "
        "only when a consumer has a backlog (under a steady load a fetch brings a few); 2,000 "
        "caught up 7-9 % quicker than 500 for priority and feedback, ≈ 3 % for insight "
        "(docs/performance.md, finding 70). A smaller value shortens what one failure retries.",
    )
    consumer_batch_wait_ms: int = Field(
        default=5, ge=1, le=1_000,
        description="How long a consumer waits for fetched records before it idles for as long "
        "again (FastStream's batch loop): the most a record waits in the client once fetched. "
        "Small is quick to react; each idle round costs a wake-up.",
    )
    consumer_max_attempts: int = Field(
        default=3, ge=1, description="Attempts on a transient error before dead-lettering."
    )
    auth_jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 key (at least 32 characters) that verifies bearer tokens. Every HTTP "
        "service needs this or auth_jwt_public_key, and refuses to start with neither.",
    )
    auth_jwt_public_key: str | None = Field(
        default=None,
        description="PEM public key of the token issuer (RSA: RS256, EC P-256: ES256); services "
        "then verify tokens without holding any signing key.",
    )
    auth_jwt_issuer: str = Field(default="golden-thread", min_length=1,
                                 description="The `iss` every token must carry.")
    auth_jwt_audience: str = Field(default="golden-thread", min_length=1,
                                   description="The `aud` every token must carry.")
    auth_jwt_leeway_s: int = Field(default=30, ge=0, le=300,
                                   description="Clock skew tolerated on `exp`, `nbf` and `iat`.")
