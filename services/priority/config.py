"""Priority settings (environment prefix GT_, fields prefixed priority_, plus the core settings)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from contracts import AgreementRule
from eventcore.settings import CoreSettings
from services.priority.domain.agreement import check_rule_bounds

SOURCE = "priority"
SCHEMA = "priority"
CONSUMER = "priority"


class PrioritySettings(CoreSettings):
    model_config = SettingsConfigDict(env_prefix="GT_", frozen=True, extra="ignore")

    priority_default_quorum: int = Field(
        default=3, ge=1, le=500, description="Fewest partners who must respond, by default."
    )
    priority_default_majority_numerator: int = Field(
        default=2, ge=1, le=100, description="Default majority numerator (of those who decide)."
    )
    priority_default_majority_denominator: int = Field(
        default=3, ge=1, le=100,
        description="Default share of support needed: numerator/denominator.",
    )
    priority_min_quorum: int = Field(
        default=2, ge=1, le=500,
        description="Smallest quorum a session may choose: a collective priority needs "
        "a collective.",
    )
    priority_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    priority_http_host: str = "127.0.0.1"
    priority_http_port: int = Field(default=8003, ge=0, le=65535)

    @model_validator(mode="after")
    def _default_rule_is_sane(self) -> Self:
        broken = check_rule_bounds(self.default_rule(), self.priority_min_quorum)
        if broken:
            raise ValueError("priority default rule: " + "; ".join(b.problem for b in broken))
        return self

    def default_rule(self) -> AgreementRule:
        return AgreementRule(
            quorum=self.priority_default_quorum,
            majority_numerator=self.priority_default_majority_numerator,
            majority_denominator=self.priority_default_majority_denominator,
        )
