"""The narrow path to contact details: intake's vault, asked at the moment of sending.

Nothing is cached: each answer lives only as long as one delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import httpx
from pydantic import ValidationError

from contracts import RecontactConsent
from services.feedback.domain.delivery import ContactCard, ContactLookup, Gone


class ContactsUnavailable(Exception):
    """Intake could not answer now (down, slow, refusing our token); try again later."""


class ContactReader(Protocol):
    async def read(self, participant_id: str) -> ContactLookup: ...


class HttpContactReader:
    """GET {intake}/internal/participants/{id}/contact with a bearer token: a fixed one, or a
    function giving the current one (a short-lived JWT the service mints for itself)."""

    def __init__(self, base_url: str, token: str | Callable[[], str], *, timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._token = token if callable(token) else (lambda: token)
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport)

    async def read(self, participant_id: str) -> ContactLookup:
        try:
            answer = await self._client.get(f"/internal/participants/{participant_id}/contact",
                                            headers={"authorization": f"Bearer {self._token()}"})
        except httpx.HTTPError as exc:
            raise ContactsUnavailable(f"intake unreachable ({type(exc).__name__})") from None
        if answer.status_code == 410:
            return Gone(participant_id, "erased")
        if answer.status_code == 404:
            return Gone(participant_id, "unknown_participant")
        if answer.status_code != 200:
            raise ContactsUnavailable(f"intake answered {answer.status_code}")
        return _card(participant_id, answer.json())

    async def aclose(self) -> None:
        await self._client.aclose()


def _card(participant_id: str, body: Any) -> ContactCard:
    try:
        # Additive fields (a later intake may say more) are ignored, missing ones are not.
        known = RecontactConsent.model_fields
        consent = RecontactConsent.model_validate(
            {k: v for k, v in body["consent"].items() if k in known})
        name, email = body.get("name"), body.get("email")
        if body.get("participant_id") != participant_id:
            raise ValueError("answer is about someone else")
        if not (name is None or isinstance(name, str)) or not (
                email is None or isinstance(email, str)):
            raise ValueError("name and email must be text")
    except (KeyError, TypeError, ValueError, ValidationError):
        # Never chain or repeat the body: it holds contact details.
        raise ContactsUnavailable("intake's answer was not understood") from None
    return ContactCard(participant_id, name or None, email or None, consent)
