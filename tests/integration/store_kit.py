"""Helpers for event-store tests: a core-only schema and drafts of a real contract event."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
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


async def cancel_callers(one: Callable[[], Coroutine[Any, Any, None]], rounds: int = 10) -> None:
    """`rounds` rounds of 12 callers at once, every third cancelled (a little later each round:
    queued, leading, or waiting on a group), then one more caller: none may stall."""
    for round_ in range(rounds):
        tasks = [asyncio.create_task(one()) for _ in range(12)]
        await asyncio.sleep(0.0005 * round_)
        for task in tasks[::3]:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    await asyncio.wait_for(one(), 10)
