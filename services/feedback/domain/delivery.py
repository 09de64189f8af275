"""What to do with a due notification, decided from intake's answer at the moment of sending.

The graph may lag behind intake; intake's answer is the truth at send time, so withdrawn
consent or erasure there means the person is never contacted, whatever the graph said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from contracts import RecontactConsent

CancelReason = Literal[
    "erased", "unknown_participant", "consent_withdrawn", "no_email_address", "no_longer_in_chain"
]


@dataclass(frozen=True, repr=False)
class ContactCard:
    """Opened contact details: held in memory only while sending, never stored or logged."""

    participant_id: str
    name: str | None
    email: str | None
    consent: RecontactConsent

    def __repr__(self) -> str:
        return f"ContactCard({self.participant_id}, <contact details hidden>)"


@dataclass(frozen=True)
class Gone:
    participant_id: str
    why: Literal["erased", "unknown_participant"]


ContactLookup = ContactCard | Gone


@dataclass(frozen=True)
class Cancel:
    reason: CancelReason


@dataclass(frozen=True)
class Hold:
    until: date


@dataclass(frozen=True, repr=False)
class SendEmail:
    address: str
    name: str | None

    def __repr__(self) -> str:
        return "SendEmail(<address hidden>)"


@dataclass(frozen=True)
class AskPeer:
    pass


Decision = Cancel | Hold | SendEmail | AskPeer


def decide_delivery(lookup: ContactLookup, today: date) -> Decision:
    if isinstance(lookup, Gone):
        return Cancel(lookup.why)
    consent = lookup.consent
    if not consent.to_recontact or consent.channel == "none":
        return Cancel("consent_withdrawn")
    if consent.earliest_contact_on is not None and consent.earliest_contact_on > today:
        return Hold(consent.earliest_contact_on)
    if consent.channel == "peer_in_person":
        return AskPeer()
    if not lookup.email:
        return Cancel("no_email_address")
    return SendEmail(lookup.email, lookup.name)
