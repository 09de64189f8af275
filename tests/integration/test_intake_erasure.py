"""Erasure crypto-shreds a participant; consent changes; the narrow contact path for feedback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from contracts import ActorRole, parse_event, verify_chain
from eventcore.embedded import StackEndpoints
from services.intake.views import ERASED
from tests.conftest import bearer
from tests.integration.intake_fixtures import RunningIntake, running_intake
from tests.integration.test_intake_http import EMAIL, NAME, PHONE, QUOTE, request

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(endpoints: StackEndpoints) -> AsyncIterator[RunningIntake]:
    async with running_intake(endpoints) as running:
        yield running


def auth(token: str | None = None) -> dict[str, str]:
    """The feedback service's machine token, or the given bearer token."""
    return bearer(ActorRole.SYSTEM, "feedback") if token is None else {
        "authorization": f"Bearer {token}"}


async def test_erased_participant_quotes_read_as_erased_and_the_chain_still_verifies(
    intake: RunningIntake,
) -> None:
    first = (await intake.client.post("/conversations", json=request())).json()
    pid = first["participant_id"]
    again = await intake.client.post("/conversations",
                                     json=request(participant={"id": pid}, quotes=["Second time."]))
    assert again.status_code == 201 and again.json()["participant_id"] == pid
    shown = (await intake.client.get(f"/conversations/{first['id']}")).json()
    assert shown["quotes"] == [QUOTE] and shown["participant_id"] == pid

    erased = await intake.client.post(f"/participants/{pid}/erasure", json={"actor_id": "listener-1"})
    assert erased.status_code == 200, erased.text

    for conversation_id in (first["id"], again.json()["id"]):
        shown = (await intake.client.get(f"/conversations/{conversation_id}")).json()
        assert shown["quotes"] == [ERASED] and shown["erased"] is True
    listed = (await intake.client.get("/conversations", params={"participant_id": pid})).json()
    assert listed == []
    assert (await intake.client.get(f"/internal/participants/{pid}/contact", headers=auth())).status_code == 410

    rt = intake.runtime
    assert rt.pool is not None
    async with rt.pool.acquire() as conn:
        events = [parse_event(json.dumps(e.envelope)) for e in await rt.store.read_after(conn, 0, 10_000)]
        leftovers = await conn.fetchval(
            "SELECT count(*) FROM participant_contacts WHERE participant_id = $1", pid)
    assert verify_chain(events) is None
    assert [e.type for e in events if e.subject == pid] == ["ParticipantErased"]
    assert leftovers == 0


async def test_an_erased_participant_cannot_be_logged_again_or_erased_twice(intake: RunningIntake) -> None:
    pid = (await intake.client.post("/conversations", json=request())).json()["participant_id"]
    await intake.client.post(f"/participants/{pid}/erasure", json={"actor_id": "listener-1"})
    again = await intake.client.post("/conversations", json=request(participant={"id": pid}))
    assert again.status_code == 409 and again.json()["problems"][0]["field"] == "participant.id"
    twice = await intake.client.post(f"/participants/{pid}/erasure", json={"actor_id": "listener-1"})
    assert twice.status_code == 409


async def test_contact_details_open_only_for_a_valid_token(intake: RunningIntake) -> None:
    pid = (await intake.client.post("/conversations", json=request())).json()["participant_id"]
    url = f"/internal/participants/{pid}/contact"
    assert (await intake.client.get(url, headers={"authorization": ""})).status_code == 401
    assert (await intake.client.get(url, headers=auth("guess"))).status_code == 401
    opened = await intake.client.get(url, headers=auth())
    assert opened.status_code == 200
    assert opened.json()["name"] == NAME and opened.json()["email"] == EMAIL
    assert opened.json()["phone"] == PHONE
    assert opened.json()["consent"]["channel"] == "email"
    unknown = await intake.client.get("/internal/participants/p_nobody12345/contact", headers=auth())
    assert unknown.status_code == 404


async def test_withdrawn_consent_is_recorded_as_an_event_and_seen_by_feedback(
    intake: RunningIntake,
) -> None:
    pid = (await intake.client.post("/conversations", json=request())).json()["participant_id"]
    changed = await intake.client.post(f"/participants/{pid}/consent", json={
        "actor_id": "listener-1",
        "consent": {"to_quote": False, "to_recontact": False, "channel": "none",
                    "earliest_contact_on": None}})
    assert changed.status_code == 200, changed.text
    opened = (await intake.client.get(f"/internal/participants/{pid}/contact", headers=auth())).json()
    assert opened["consent"]["to_recontact"] is False
    bad = await intake.client.post(f"/participants/{pid}/consent", json={
        "actor_id": "listener-1", "consent": {"to_recontact": True, "channel": "none"}})
    assert bad.status_code == 422


async def test_conversations_filter_by_category_place_and_date(intake: RunningIntake) -> None:
    place = "Walthamstow Test Area"
    await intake.client.post("/conversations", json=request(place=place, categories=["cultural_factors"],
                                                            held_on="2026-01-05"))
    await intake.client.post("/conversations", json=request(place=place, categories=["community_support"],
                                                            held_on="2026-03-05"))
    by_place = (await intake.client.get("/conversations", params={"place": place.lower()})).json()
    assert len(by_place) == 2
    cultural = (await intake.client.get("/conversations", params={
        "place": place, "category": "cultural_factors"})).json()
    assert [c["categories"] for c in cultural] == [["cultural_factors"]]
    recent = (await intake.client.get("/conversations", params={
        "place": place, "held_from": "2026-02-01"})).json()
    assert [c["held_on"] for c in recent] == ["2026-03-05"]
    bad = await intake.client.get("/conversations", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "limit"
