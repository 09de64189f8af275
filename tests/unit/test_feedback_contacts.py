"""The intake contact adapter: answers mapped to cards, gone people, or 'try later'."""

from __future__ import annotations

import httpx
import pytest

from services.feedback.adapters.contacts import ContactsUnavailable, HttpContactReader
from services.feedback.domain.delivery import ContactCard, Gone

PID = "p_abc12345"
BODY = {"participant_id": PID, "name": "Amina", "email": "amina@example.org", "phone": None,
        "consent": {"to_quote": False, "to_recontact": True, "channel": "email",
                    "earliest_contact_on": "2026-06-01"}}


def reader(status: int, body: object = None) -> HttpContactReader:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != "Bearer s3cret":
            return httpx.Response(401)
        return httpx.Response(status, json=body)

    return HttpContactReader("http://intake", "s3cret", transport=httpx.MockTransport(answer))


async def test_an_answer_becomes_a_contact_card_with_the_latest_consent() -> None:
    card = await reader(200, BODY).read(PID)
    assert isinstance(card, ContactCard)
    assert card.email == "amina@example.org" and card.consent.channel == "email"
    assert str(card.consent.earliest_contact_on) == "2026-06-01"


async def test_fields_a_later_intake_adds_are_ignored() -> None:
    later = {**BODY, "pronouns": "she/her",
             "consent": {**BODY["consent"], "to_store": True}}  # type: ignore[dict-item]
    assert isinstance(await reader(200, later).read(PID), ContactCard)


async def test_erased_and_unknown_participants_are_gone() -> None:
    assert await reader(410).read(PID) == Gone(PID, "erased")
    assert await reader(404).read(PID) == Gone(PID, "unknown_participant")


@pytest.mark.parametrize("status, body", [(401, None), (503, None), (200, {"consent": {}}),
                                          (200, {**BODY, "participant_id": "p_other999"})])
async def test_anything_else_means_try_later_without_repeating_the_answer(
    status: int, body: object
) -> None:
    with pytest.raises(ContactsUnavailable) as caught:
        await reader(status, body).read(PID)
    assert "amina" not in str(caught.value) and caught.value.__cause__ is None
