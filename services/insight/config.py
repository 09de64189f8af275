"""Insight settings (environment prefix GT_INSIGHT_, plus the shared GT_ core settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from eventcore.settings import CoreSettings

SOURCE = "insight"
SCHEMA = "insight"
CONSUMER = "insight"


class InsightSettings(CoreSettings):
    model_config = SettingsConfigDict(env_prefix="GT_", frozen=True, extra="ignore")

    insight_trusted_sources: tuple[str, ...] = Field(
        default=("intake",),
        description="Sources whose ConversationLogged and ParticipantErased events are believed; "
        "the same types from any other source are dead-lettered.",
    )
    insight_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    insight_http_host: str = "127.0.0.1"
    insight_http_port: int = Field(default=8002, ge=0, le=65535)
