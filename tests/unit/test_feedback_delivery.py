"""At send time intake's answer decides: never contact the withdrawn or erased; hold until due."""

from __future__ import annotations

from datetime import date

from contracts import RecontactConsent
from services.feedback.domain.delivery import (
    AskPeer,
    Cancel,
    ContactCard,
    Gone,
    Hold,
    SendEmail,
    decide_delivery,
)

TODAY = date(2026, 3, 1)


def card(channel: str = "email", *, email: str | None = "amina@example.org",
         earliest: date | None = None) -> ContactCard:
    consent = RecontactConsent(to_quote=False, to_recontact=channel != "none",
                               channel=channel,
                               earliest_contact_on=earliest)
    return ContactCard("p_abc12345", "Amina", email, consent)


def test_erased_or_unknown_people_are_never_contacted() -> None:
    assert decide_delivery(Gone("p_abc12345", "erased"), TODAY) == Cancel("erased")
    assert decide_delivery(Gone("p_abc12345", "unknown_participant"), TODAY) == Cancel(
        "unknown_participant")


def test_withdrawn_consent_cancels_even_before_the_earliest_date() -> None:
    assert decide_delivery(card("none", earliest=date(2027, 1, 1)), TODAY) == Cancel(
        "consent_withdrawn")


def test_a_notification_before_the_earliest_contact_day_is_held_until_then() -> None:
    assert decide_delivery(card(earliest=date(2026, 3, 2)), TODAY) == Hold(date(2026, 3, 2))
    assert isinstance(decide_delivery(card(earliest=TODAY), TODAY), SendEmail)


def test_email_goes_to_the_address_opened_at_send_time() -> None:
    decision = decide_delivery(card(), TODAY)
    assert decision == SendEmail("amina@example.org", "Amina")
    assert "amina" not in repr(decision) and "amina" not in repr(card())


def test_email_without_an_address_is_cancelled_and_peer_contact_goes_to_a_peer() -> None:
    assert decide_delivery(card(email=None), TODAY) == Cancel("no_email_address")
    assert decide_delivery(card("peer_in_person", email=None), TODAY) == AskPeer()
