"""Who may call intake: every route × every role; decrypted quotes only for admins and the
listener who logged the conversation; contact details only for the feedback service and admins."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from contracts import ActorRole
from eventcore.embedded import StackEndpoints
from tests.conftest import bearer
from tests.integration.access_kit import (
    check_actor_fields,
    check_every_route,
    check_untrusted_tokens,
)
from tests.integration.intake_fixtures import RunningIntake, running_intake
from tests.integration.test_intake_http import EMAIL, QUOTE, request

pytestmark = pytest.mark.integration
LISTENER, PARTNER = "community_listener", "lived_experience_partner"
LEAD, TRUST, AUDITOR, ADMIN = "service_lead", "trust_system", "auditor", "admin"

TABLE = {
    ("POST", "/conversations"): (LISTENER, ADMIN),
    ("GET", "/conversations"): (LISTENER, PARTNER, AUDITOR, ADMIN),
    ("GET", "/conversations/{conversation_id}"): (LISTENER, PARTNER, AUDITOR, ADMIN),
    ("POST", "/participants/{participant_id}/consent"): (LISTENER, ADMIN),
    ("POST", "/participants/{participant_id}/erasure"): (LISTENER, ADMIN),
    ("GET", "/categories"): (LISTENER, PARTNER, LEAD, TRUST, AUDITOR, ADMIN),
    ("GET", "/internal/participants/{participant_id}/contact"): (ADMIN, "system:feedback"),
}


@pytest.fixture(scope="module")
async def intake(endpoints: StackEndpoints) -> AsyncIterator[RunningIntake]:
    async with running_intake(endpoints) as running:
        yield running


async def test_every_route_admits_exactly_its_declared_roles(intake: RunningIntake) -> None:
    await check_every_route(intake.client, intake.app, TABLE)


async def test_a_missing_or_untrustworthy_token_is_401_on_every_route(intake: RunningIntake) -> None:
    await check_untrusted_tokens(intake.client, intake.app)


async def test_a_listener_logs_and_changes_only_in_their_own_name(intake: RunningIntake) -> None:
    listener = ActorRole.COMMUNITY_LISTENER
    await check_actor_fields(intake.client, [
        ("POST", "/conversations", listener, request(listener_id="someone-else"), "listener_id"),
        ("POST", "/participants/{participant_id}/consent", listener,
         {"actor_id": "someone-else", "consent": {"to_quote": False, "to_recontact": False,
                                                  "channel": "none"}}, "actor_id"),
        ("POST", "/participants/{participant_id}/erasure", listener,
         {"actor_id": "someone-else"}, "actor_id"),
    ])
    own = await intake.client.post("/conversations", json=request(listener_id="listener-own"),
                                   headers=bearer(listener, "listener-own"))
    assert own.status_code == 201, own.text


async def test_quotes_open_only_for_the_listener_who_logged_them_and_admins(
    intake: RunningIntake,
) -> None:
    logged = await intake.client.post("/conversations", json=request(listener_id="listener-q"),
                                      headers=bearer(ActorRole.COMMUNITY_LISTENER, "listener-q"))
    url = f"/conversations/{logged.json()['id']}"
    for role, subject in [(ActorRole.COMMUNITY_LISTENER, "listener-q"), (ActorRole.ADMIN, "ops-1")]:
        shown = (await intake.client.get(url, headers=bearer(role, subject))).json()
        assert shown["quotes"] == [QUOTE] and shown["quotes_withheld"] is False, role
    for role, subject in [(ActorRole.COMMUNITY_LISTENER, "listener-other"),
                          (ActorRole.LIVED_EXPERIENCE_PARTNER, "listener-q"),
                          (ActorRole.AUDITOR, "auditor-1")]:
        answer = await intake.client.get(url, headers=bearer(role, subject))
        assert answer.status_code == 200, role
        shown = answer.json()
        assert shown["quotes"] is None and shown["quotes_withheld"] is True, role
        assert QUOTE not in answer.text and shown["quote_count"] == 1 and shown["summary"]


async def test_contact_details_open_only_for_the_feedback_service_and_admins(
    intake: RunningIntake,
) -> None:
    logged = await intake.client.post("/conversations", json=request(listener_id="listener-c"),
                                      headers=bearer(ActorRole.COMMUNITY_LISTENER, "listener-c"))
    url = f"/internal/participants/{logged.json()['participant_id']}/contact"
    for role, subject in [(ActorRole.SYSTEM, "feedback"), (ActorRole.ADMIN, "ops-1")]:
        answer = await intake.client.get(url, headers=bearer(role, subject))
        assert answer.status_code == 200 and answer.json()["email"] == EMAIL, role
    for role, subject in [(ActorRole.COMMUNITY_LISTENER, "listener-c"),
                          (ActorRole.AUDITOR, "auditor-1"), (ActorRole.SYSTEM, "insight"),
                          (ActorRole.LIVED_EXPERIENCE_PARTNER, "partner-1")]:
        answer = await intake.client.get(url, headers=bearer(role, subject))
        assert answer.status_code == 403 and EMAIL not in answer.text, role
