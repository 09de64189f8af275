"""Bearer tokens for the load's HTTP calls: minted with the lab's secret, one per (role, actor),
when the project's token minting is available; no header otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Bearer:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._secret = env.get("GT_AUTH_JWT_SECRET")
        self._issuer = env.get("GT_AUTH_JWT_ISSUER")
        self._audience = env.get("GT_AUTH_JWT_AUDIENCE")
        self._cache: dict[tuple[str, str], dict[str, str]] = {}
        self._mint: Any = None
        if self._secret:
            try:
                from eventcore.tokens import mint_token
            except ImportError:  # no auth in this build: calls go without a token
                mint_token = None  # type: ignore[assignment]
            self._mint = mint_token

    def headers(self, role: str, subject: str) -> dict[str, str]:
        if self._mint is None:
            return {}
        key = (role, subject)
        if key not in self._cache:
            token = self._mint(self._secret, role, subject, 6 * 3600,
                               issuer=self._issuer, audience=self._audience)
            self._cache[key] = {"authorization": f"Bearer {token}"}
        return self._cache[key]
