"""End to end across separate processes on a real broker and PostgreSQL: one person's words
become a change, and they are told; every event's causation leads back along the chain."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from contracts import ActorRole
from contracts.topics import ALL_TOPICS, PUBLIC_TOPICS
from eventcore.embedded import EmbeddedStack, StackEndpoints
from eventcore.settings import CoreSettings
from golden_thread.demo.mailbox import MailServer
from golden_thread.demo.processes import ServiceProcess, start_service
from golden_thread.demo.thread import Badges
from golden_thread.observe import read_topics
from services.intake.adapters.vault import new_master_key

pytestmark = pytest.mark.e2e
NAME, EMAIL = "Nadia Farouk-Lindqvist", "nadia.fl@example.org"
SECRET = secrets.token_urlsafe(32)
badge = Badges(SECRET)
LISTENER, PARTNER = ActorRole.COMMUNITY_LISTENER, ActorRole.LIVED_EXPERIENCE_PARTNER


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture(scope="module")
async def system(mail: MailServer, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[tuple[StackEndpoints, dict[str, str]]]:
    work = tmp_path_factory.mktemp("e2e")
    async with EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=work / "stack") as ep:
        env = {**ep.as_env(), "GT_RELAY_POLL_INTERVAL_S": "0.2",
               "GT_INTAKE_VAULT_MASTER_KEY": new_master_key(),
               "GT_AUTH_JWT_SECRET": SECRET,  # feedback mints its own token for intake
               "GT_FEEDBACK_SMTP_HOST": "127.0.0.1", "GT_FEEDBACK_SMTP_PORT": str(mail.port),
               "GT_FEEDBACK_SCHEDULER_INTERVAL_S": "0.3",
               "PYTHONPATH": os.pathsep.join(sys.path)}
        procs: dict[str, ServiceProcess] = {"intake": start_service("intake", env, work)}
        try:
            await procs["intake"].wait_ready()
            env["GT_FEEDBACK_INTAKE_URL"] = procs["intake"].url
            for name in ("insight", "priority", "feedback"):
                procs[name] = start_service(name, env, work)
            await asyncio.gather(*(p.wait_ready() for p in procs.values()))
            yield ep, {name: p.url for name, p in procs.items()}
        finally:
            codes = {name: p.stop() for name, p in procs.items()}
        assert codes == dict.fromkeys(procs, 0), f"every service stops cleanly: {codes}"


async def until(check: Any, timeout_s: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.2)


async def test_one_conversation_becomes_a_notification_to_that_participant(
    system: tuple[StackEndpoints, dict[str, str]], mail: MailServer,
) -> None:
    endpoints, url = system
    async with httpx.AsyncClient(timeout=30) as client:
        logged = (await client.post(f"{url['intake']}/conversations", json={
            "listener_id": "listener-9", "held_on": "2026-11-02", "setting": "community café",
            "place": "Hackney", "categories": ["continuity_of_care"],
            "summary": "Had to tell their story again to every new worker.",
            "quotes": ["Every time it is someone new."], "support_shared": ["CMHT"],
            "participant": {"contact": {"name": NAME, "email": EMAIL}},
            "consent": {"to_store": True, "to_quote": True, "to_recontact": True,
                        "channel": "email", "earliest_contact_on": None}},
            headers=badge(LISTENER, "listener-9"))).json()
        cid, pid = logged["id"], logged["participant_id"]

        async def seen_by_insight() -> bool:
            return (await client.get(f"{url['insight']}/conversations/{cid}",
                                     headers=badge(PARTNER, "partner-1"))).status_code == 200

        await until(seen_by_insight)
        insight = (await client.post(f"{url['insight']}/insights", json={
            "partner_id": "partner-1", "category": "continuity_of_care",
            "statement": "People want one worker who knows them.",
            "conversation_ids": [cid]}, headers=badge(PARTNER, "partner-1"))).json()

        async def seen_by_priority() -> bool:
            items = (await client.get(f"{url['priority']}/insights",
                                      headers=badge(PARTNER, "facilitator-1"))).json()
            items = items["items"] if isinstance(items, dict) else items
            return any(str(i["insight_id"]) == insight["id"] for i in items)

        await until(seen_by_priority)
        session = (await client.post(f"{url['priority']}/sessions", json={
            "opened_by": "facilitator-1", "insight_ids": [insight["id"]],
            "statement": "Give everyone a named key worker."},
            headers=badge(PARTNER, "facilitator-1"))).json()
        for partner in ("partner-1", "partner-2", "partner-3"):
            await client.post(f"{url['priority']}/sessions/{session['session_id']}/responses",
                              json={"partner_id": partner, "response": "support"},
                              headers=badge(PARTNER, partner))
        decision = (await client.post(f"{url['priority']}/sessions/{session['session_id']}/decision",
                                      json={"decided_by": "facilitator-1"},
                                      headers=badge(PARTNER, "facilitator-1"))).json()
        assert decision["outcome"] == "agreed", decision
        action = (await client.post(f"{url['priority']}/actions", json={
            "recorded_by": "lead-1", "priority_ids": [decision["priority_id"]],
            "description": "Each person now has a named key worker from the CMHT.",
            "service": "community mental health team", "place": "Hackney",
            "framework": "Community Mental Health Framework",
            "framework_area": "Continuity of care", "status": "in_progress"},
            headers=badge(ActorRole.SERVICE_LEAD, "lead-1"))).json()

    events = await read_topics(endpoints.kafka_bootstrap_servers, list(PUBLIC_TOPICS),
                               until=lambda c: c["ParticipantNotified"] >= 1, timeout_s=60)
    [told] = [e for e in events if e.type == "ParticipantNotified"]
    assert str(told.data.participant_id) == pid and str(told.data.action_id) == action["action_id"]
    [letter] = await until(lambda: _letters_to(mail, EMAIL))
    body = letter.get_payload(decode=True).decode() if not letter.is_multipart() else str(letter)
    assert "community mental health team" in body and "CMHT" not in body

    by_id = {str(e.id): e for e in events}
    chain = [told]
    while chain[-1].type != "ConversationLogged":
        parents = [by_id[c] for c in chain[-1].causationids if c in by_id]
        assert parents, f"{chain[-1].type} names no earlier event it rests on"
        chain.append(parents[0])
    assert [e.type for e in chain] == ["ParticipantNotified", "ActionTaken", "PriorityAgreed",
                                       "InsightDrafted", "ConversationLogged"]
    assert str(chain[-1].data.conversation_id) == cid
    assert len({e.correlationid for e in chain}) >= 1


async def _letters_to(mail: MailServer, address: str) -> list[Any]:
    return [m for m in mail.mailbox.messages if address in str(m.get("To", ""))]
