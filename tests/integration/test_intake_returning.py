"""A returning participant's conversation is appended behind a guard (their row locked before
the source head, `eventcore/store/guarded.py`), grouped with other callers': an erasure that
lands between their key being read and the append refuses it, so does an address removed after
it was found for email feedback, and conversations, erasures and consent changes at once never
deadlock and never log a conversation after its erasure."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contracts import parse_event, verify_chain
from eventcore.embedded import StackEndpoints
from services.intake.handlers import Intake
from tests.integration.intake_fixtures import RunningIntake, running_intake
from tests.integration.test_intake_http import request

pytestmark = pytest.mark.integration

#: No feedback by email, so no contact read: the guard is what stands between key and append.
NO_FEEDBACK = {"to_store": True, "to_quote": True, "to_recontact": False, "channel": "none",
               "earliest_contact_on": None}
EMAIL_FEEDBACK = {**NO_FEEDBACK, "to_recontact": True, "channel": "email"}
WITHDRAWN = {"actor_id": "listener-1", "consent": {
    "to_quote": False, "to_recontact": False, "channel": "none", "earliest_contact_on": None}}


@pytest.fixture(scope="module")
async def intake(endpoints: StackEndpoints) -> AsyncIterator[RunningIntake]:
    async with running_intake(endpoints) as running:
        yield running


async def _events(intake: RunningIntake) -> list[Any]:
    rt = intake.runtime
    assert rt.pool is not None
    async with rt.pool.acquire() as conn:
        return [parse_event(json.dumps(e.envelope))
                for e in await rt.store.read_after(conn, 0, 100_000)]


def _logged_for(events: list[Any], pid: str) -> list[Any]:
    return [e for e in events if e.type == "ConversationLogged" and e.data.participant_id == pid]


@pytest.mark.parametrize("consent", [NO_FEEDBACK, EMAIL_FEEDBACK], ids=["guard", "contact read"])
async def test_an_erasure_after_the_key_is_read_refuses_the_conversation(
    intake: RunningIntake, monkeypatch: pytest.MonkeyPatch, consent: dict[str, Any],
) -> None:
    """Refused by the guard, or (email feedback) when the address on record is read: 409."""
    pid = (await intake.client.post("/conversations", json=request())).json()["participant_id"]
    handler: Intake = intake.app.state.intake
    read_key = handler._returning_key

    async def then_erased(conn: Any, participant_id: str) -> Any:
        key = await read_key(conn, participant_id)
        erased = await intake.client.post(f"/participants/{participant_id}/erasure",
                                          json={"actor_id": "listener-1"})
        assert erased.status_code == 200, erased.text
        return key

    monkeypatch.setattr(handler, "_returning_key", then_erased)
    again = await intake.client.post("/conversations", json=request(
        participant={"id": pid}, consent=consent))
    assert again.status_code == 409, again.text
    assert again.json()["problems"][0]["field"] == "participant.id"
    events = await _events(intake)
    assert len(_logged_for(events, pid)) == 1  # the first only: nothing of the refused one
    assert [e.type for e in events if e.subject == pid] == ["ParticipantErased"]
    rows = await intake.fetchrow("SELECT count(*) AS n, bool_and(erased) AS erased"
                                 " FROM conversations WHERE participant_id = $1", pid)
    assert rows is not None and (rows["n"], rows["erased"]) == (1, True)


async def test_an_address_removed_after_it_was_found_refuses_email_feedback(
    intake: RunningIntake, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Email feedback, no address given: the one on record is found; then another conversation
    replaces the contact details with some that hold none. The guard, which locks the contact
    row too, refuses the first (422), so no conversation promises email to nowhere."""
    pid = (await intake.client.post("/conversations", json=request())).json()["participant_id"]
    handler: Intake = intake.app.state.intake
    read_contact = handler.vault.read_contact
    replaced: list[int] = []

    async def then_replaced(conn: Any, participant_id: str) -> Any:
        found = await read_contact(conn, participant_id)
        answer = await intake.client.post("/conversations", json=request(
            participant={"id": participant_id, "contact": {"name": "A. N. Other"}},
            consent=NO_FEEDBACK))
        replaced.append(answer.status_code)
        return found

    monkeypatch.setattr(handler.vault, "read_contact", then_replaced)
    refused = await intake.client.post("/conversations", json=request(
        participant={"id": pid}, consent=EMAIL_FEEDBACK))
    assert replaced == [201]
    assert refused.status_code == 422, refused.text
    assert refused.json()["problems"][0]["field"] == "participant.contact.email"
    assert len(_logged_for(await _events(intake), pid)) == 2  # the first and the replacing one


async def test_an_address_removed_while_the_guard_waits_refuses_email_feedback(
    intake: RunningIntake,
) -> None:
    """The participant's row held by a transaction that marks their contact as holding no
    address, while the conversation (email feedback, none given) waits on it: once that
    commits, the guard, reading both rows again, refuses it (422)."""
    pid = (await intake.client.post("/conversations", json=request())).json()["participant_id"]
    pool = intake.runtime.pool
    assert pool is not None
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM participants WHERE participant_id = $1 FOR UPDATE", pid)
        await conn.execute(
            "UPDATE participant_contacts SET has_email = false WHERE participant_id = $1", pid)
        posting = asyncio.create_task(intake.client.post("/conversations", json=request(
            participant={"id": pid}, consent=EMAIL_FEEDBACK)))
        for _ in range(500):
            if await intake.fetchrow(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND application_name = current_setting('application_name')"):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the conversation never waited on the participant's row")
        assert not posting.done()
    refused = await asyncio.wait_for(posting, timeout=10)
    assert refused.status_code == 422, refused.text
    assert refused.json()["problems"][0]["field"] == "participant.contact.email"
    assert len(_logged_for(await _events(intake), pid)) == 1


async def test_conversations_erasures_and_consent_changes_at_once(
    intake: RunningIntake, caplog: pytest.LogCaptureFixture,
) -> None:
    """Per participant three returning conversations, a consent change and an erasure, all
    sent at once in a shuffled order: each answer is a success or a 409, never an error (no
    deadlock); no conversation is logged after its participant's erasure; every conversation
    answered 201 is in the store, and the chain holds."""
    pids = [(await intake.client.post("/conversations", json=request())).json()["participant_id"]
            for _ in range(8)]
    caplog.set_level(logging.WARNING, logger="eventcore.store")
    calls: list[tuple[str, str, str, dict[str, Any]]] = []
    for pid in pids:
        calls += [(pid, "conversation", "/conversations",
                   request(participant={"id": pid}, consent=NO_FEEDBACK))] * 2
        calls += [(pid, "conversation", "/conversations",  # new contact details, and email
                   request(participant={"id": pid, "contact": {"email": "new@example.org"}})),
                  (pid, "conversation", "/conversations",
                   request(participant={"id": pid}, consent=EMAIL_FEEDBACK)),
                  (pid, "consent", f"/participants/{pid}/consent", WITHDRAWN),
                  (pid, "erasure", f"/participants/{pid}/erasure", {"actor_id": "listener-1"})]
    random.Random(3).shuffle(calls)
    answers = await asyncio.gather(*(intake.client.post(url, json=body)
                                     for _, _, url, body in calls))
    accepted: dict[str, int] = dict.fromkeys(pids, 0)
    for (pid, kind, _, _), answer in zip(calls, answers, strict=True):
        allowed = {"conversation": {201, 409}, "consent": {200, 409}, "erasure": {200}}[kind]
        assert answer.status_code in allowed, (kind, answer.status_code, answer.text)
        accepted[pid] += kind == "conversation" and answer.status_code == 201
    # A deadlock's victim is an erasure or consent change (an error answered above) or a group
    # commit, which is retried caller by caller and says so: neither happened.
    assert "deadlock" not in caplog.text
    events = await _events(intake)
    assert verify_chain(events) is None
    for pid in pids:
        [erasure] = [e for e in events if e.subject == pid and e.type == "ParticipantErased"]
        logged = _logged_for(events, pid)
        assert len(logged) == 1 + accepted[pid]
        assert all(e.sequence < erasure.sequence for e in logged)
        consent = [e for e in events if e.subject == pid and e.type == "ConsentChanged"]
        assert all(e.sequence < erasure.sequence for e in consent)
    left = await intake.fetchrow(
        "SELECT bool_and(erased) AS all_erased, (SELECT count(*) FROM participant_contacts"
        " WHERE participant_id = ANY($1::text[])) AS contacts FROM conversations"
        " WHERE participant_id = ANY($1::text[])", pids)
    assert left is not None and (left["all_erased"], left["contacts"]) == (True, 0)

