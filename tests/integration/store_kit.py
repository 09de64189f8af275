"""Helpers for event-store tests: a core-only schema and drafts of a real contract event."""

from __future__ import annotations

import secrets
from typing import Any

from contracts import ActorRole, ConsentChanged, ConsentChangedEvent, RecontactConsent, new_event
from eventcore.db import migrate

SOURCE = "intake"
TOPICS = {"ConsentChanged": "intake.participants.v1"}


async def core_schema(database_url: str) -> str:
    schema = f"s_{secrets.token_hex(4)}"
    await migrate(database_url, schema, [], source=SOURCE)
    return schema


def new_subject() -> str:
    return "p_" + secrets.token_hex(8)


def consent_draft(subject: str, version: int) -> Any:
    consent = RecontactConsent(to_quote=False, to_recontact=bool(version % 2),
                               channel="email" if version % 2 else "none", earliest_contact_on=None)
    return new_event(
        ConsentChangedEvent, data=ConsentChanged(participant_id=subject, consent=consent),
        source=SOURCE, subject=subject, subjectversion=version, actorid="listener-1",
        actorrole=ActorRole.COMMUNITY_LISTENER, correlationid="store-test",
    )
