"""Feedback settings (environment prefix GT_FEEDBACK_, plus the shared GT_ core settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contracts.topics import ACTIONS, CONVERSATIONS, INSIGHTS, PARTICIPANTS, PRIORITIES
from eventcore.settings import CoreSettings

SOURCE = "feedback"
SCHEMA = "feedback"
CONSUMER = "feedback"
UPSTREAM_TOPICS = (CONVERSATIONS, PARTICIPANTS, INSIGHTS, PRIORITIES, ACTIONS)

ActionStatus = Literal["planned", "in_progress", "done"]


class FeedbackSettings(CoreSettings):
    model_config = SettingsConfigDict(env_prefix="GT_", frozen=True, extra="ignore")

    feedback_intake_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Base URL of the intake service, whose vault opens contact details.",
    )
    feedback_intake_token: SecretStr | None = Field(
        default=None,
        description="A JWT (role `system`, subject `feedback`) for intake's "
        "/internal/participants/{id}/contact. Unset: the service mints its own short-lived "
        "token from GT_AUTH_JWT_SECRET (needed when intake verifies with a public key only).",
    )
    feedback_intake_timeout_s: float = Field(default=10.0, gt=0)
    feedback_smtp_host: str = "127.0.0.1"
    feedback_smtp_port: int = Field(default=25, ge=1, le=65535)
    feedback_smtp_from: str = Field(
        default="Golden Thread <feedback@golden-thread.localhost>",
        description="From address of feedback emails; its domain also names Message-IDs.",
    )
    feedback_smtp_starttls: bool = False
    feedback_smtp_username: str | None = None
    feedback_smtp_password: SecretStr | None = None
    feedback_smtp_timeout_s: float = Field(default=30.0, gt=0)
    feedback_glossary_file: Path | None = Field(
        default=None,
        description="JSON {\"terms\": {\"JARGON\": \"common name\"}} added to (and overriding) "
        "the glossary shipped with the service.",
    )
    feedback_categories_file: Path | None = Field(
        default=None,
        description="JSON with the enquiry categories' plain names (intake's format); "
        "defaults to the four default categories.",
    )
    feedback_trusted_action_sources: tuple[str, ...] = Field(
        default=(),
        description="Trust systems (event sources) whose own ActionTaken events feedback acts "
        "on, besides the priority service. Others are dead-lettered.",
    )
    feedback_notify_from_status: ActionStatus = Field(
        default="in_progress",
        description="An action is told about once, when first seen at this status or later: "
        "by default when the change is under way, not while it is only planned.",
    )
    feedback_timezone: str = Field(
        default="Europe/London", description="Zone whose calendar day 'earliest contact' means."
    )
    feedback_scheduler_interval_s: float = Field(default=5.0, gt=0)
    feedback_send_lease_s: float = Field(
        default=600.0,
        gt=0,
        description="A notification left 'sending' longer than this (its sender died between "
        "the SMTP hand-over and the commit) is sent again, with the same Message-ID.",
    )
    feedback_max_attempts: int = Field(default=8, ge=1)
    feedback_http_host: str = "127.0.0.1"
    feedback_http_port: int = Field(default=8004, ge=0, le=65535)
