"""Intake settings (environment prefix GT_INTAKE_, plus the shared GT_ core settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from eventcore.settings import CoreSettings

SOURCE = "intake"
SCHEMA = "intake"


class IntakeSettings(CoreSettings):
    model_config = SettingsConfigDict(env_prefix="GT_", frozen=True, extra="ignore")

    intake_vault_master_key: SecretStr | None = Field(
        default=None,
        description="32 random bytes, base64url: wraps every participant key. Keep it in a secret store.",
    )
    intake_categories_file: Path | None = Field(
        default=None, description="JSON file with a versioned list of enquiry categories."
    )
    intake_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    intake_http_host: str = "127.0.0.1"
    intake_http_port: int = Field(default=8001, ge=0, le=65535)
