"""Drives the whole thread over the services' HTTP APIs, as its users would."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from contracts import ActorRole
from eventcore.tokens import mint_token
from golden_thread.demo.scenario import Person, conversation_request, people

PARTNERS = [f"partner-{i}" for i in range(1, 7)]
INSIGHT_TEXT = {
    "cultural_factors": "People want help offered in their own language and in ways that respect "
                        "how their community talks about mental health.",
    "community_support": "Community groups and peer support keep people well between "
                         "appointments and make asking for help feel safe.",
    "clinical_and_social_help": "Long silent waits for a first appointment, and money and housing "
                                "worries, stop people getting the help they need.",
    "continuity_of_care": "People want one worker who knows them, instead of retelling their "
                          "story to everyone new.",
}
ACTIONS = {
    "cultural_factors": ("Bengali and Somali speaking link workers now run weekly drop-ins",
                         "community mental health team", "Access and engagement"),
    "community_support": ("Peer support groups funded in four community venues",
                          "peer support group", "Community assets"),
    "clinical_and_social_help": (("Everyone waiting gets a call every two weeks and benefits "
                                  "advice at the first appointment"), "NHS Talking Therapies",
                                 "Waiting well"),
    "continuity_of_care": ("Each person now has a named key worker who stays with them",
                           "community mental health team", "Continuity of care"),
}


class Badges:
    """Each caller's bearer token, minted from the demo's key: `badge(role, subject)` is the
    authorization header of `subject` acting in `role`."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._minted: dict[tuple[ActorRole, str], dict[str, str]] = {}

    def __call__(self, role: ActorRole, subject: str) -> dict[str, str]:
        if (role, subject) not in self._minted:
            token = mint_token(self._secret, role, subject, ttl_s=3600)
            self._minted[role, subject] = {"authorization": f"Bearer {token}"}
        return self._minted[role, subject]


LISTENER, PARTNER = ActorRole.COMMUNITY_LISTENER, ActorRole.LIVED_EXPERIENCE_PARTNER


@dataclass
class ThreadRecord:
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> request + ids
    erased: set[str] = field(default_factory=set)
    withdrawn: set[str] = field(default_factory=set)
    insights: dict[str, dict[str, Any]] = field(default_factory=dict)
    priorities: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed_sessions: list[list[str]] = field(default_factory=list)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def ok(answer: httpx.Response) -> dict[str, Any]:
    if answer.is_error:
        raise RuntimeError(f"{answer.request.method} {answer.request.url.path}: {answer.status_code} "
                           f"{answer.text[:300]}")
    body: dict[str, Any] = answer.json()
    return body


async def listen(client: httpx.AsyncClient, urls: dict[str, str], badge: Badges, count: int,
                 rng: random.Random, record: ThreadRecord) -> list[Person]:
    crowd = people(rng, max(1, count * 2 // 3))
    today = datetime.now(UTC).date()
    for _ in range(count):
        person = rng.choice(crowd)
        body = conversation_request(rng, person, today)
        if rng.random() < 0.1 and body["consent"]["to_recontact"]:
            body["consent"]["earliest_contact_on"] = (today + timedelta(days=30)).isoformat()
        accepted = ok(await client.post(f"{urls['intake']}/conversations", json=body,
                                        headers=badge(LISTENER, body["listener_id"])))
        person.participant_id = accepted["participant_id"]
        record.conversations[accepted["id"]] = {**body, "participant_id": accepted["participant_id"]}
    return crowd


async def forget_and_withdraw(client: httpx.AsyncClient, urls: dict[str, str], badge: Badges,
                              crowd: list[Person], rng: random.Random, record: ThreadRecord) -> None:
    """One person asks to be forgotten; another no longer wants to hear back."""
    known = [p for p in crowd if p.participant_id]
    if len(known) < 3:
        return
    erased, withdrawn = rng.sample(known, 2)
    ok(await client.post(f"{urls['intake']}/participants/{erased.participant_id}/erasure",
                         json={"actor_id": "listener-1"}, headers=badge(LISTENER, "listener-1")))
    record.erased.add(str(erased.participant_id))
    ok(await client.post(f"{urls['intake']}/participants/{withdrawn.participant_id}/consent", json={
        "actor_id": "listener-2", "consent": {"to_quote": False, "to_recontact": False,
                                             "channel": "none", "earliest_contact_on": None}},
                         headers=badge(LISTENER, "listener-2")))
    record.withdrawn.add(str(withdrawn.participant_id))


async def draft_insights(client: httpx.AsyncClient, urls: dict[str, str], badge: Badges,
                         rng: random.Random, record: ThreadRecord) -> None:
    expected = sum(1 for c in record.conversations.values() if c["participant_id"] not in record.erased)

    async def all_visible() -> bool:
        page = ok(await client.get(f"{urls['insight']}/conversations",
                                   params={"limit": 1, "offset": expected - 1},
                                   headers=badge(PARTNER, PARTNERS[0])))
        return len(page["items"]) == 1

    await until(all_visible, "partners to see every conversation")
    by_category: dict[str, list[str]] = defaultdict(list)
    for cid, c in record.conversations.items():
        if c["participant_id"] not in record.erased:
            by_category[c["categories"][0]].append(cid)
    for category, cids in sorted(by_category.items()):
        cited = rng.sample(cids, k=min(len(cids), 8))
        partner = rng.choice(PARTNERS)
        accepted = ok(await client.post(f"{urls['insight']}/insights", json={
            "partner_id": partner, "statement": INSIGHT_TEXT[category],
            "category": category, "conversation_ids": cited}, headers=badge(PARTNER, partner)))
        record.insights[accepted["id"]] = {"category": category, "conversation_ids": cited}


async def agree_priorities(client: httpx.AsyncClient, urls: dict[str, str], badge: Badges,
                           rng: random.Random, record: ThreadRecord) -> None:
    facilitator = badge(PARTNER, "facilitator-1")

    async def priority_sees_insights() -> bool:
        seen = ok_list(await client.get(f"{urls['priority']}/insights", headers=facilitator))
        return {str(i["insight_id"]) for i in seen} >= set(record.insights)

    await until(priority_sees_insights, "the priority service to receive every insight")
    for insight_id, insight in record.insights.items():
        session = ok(await client.post(f"{urls['priority']}/sessions", json={
            "opened_by": "facilitator-1", "insight_ids": [insight_id],
            "statement": INSIGHT_TEXT[insight["category"]]}, headers=facilitator))
        sid = session["session_id"]
        voters = rng.sample(PARTNERS, k=rng.choice((2, 4, 5, 5)))
        for partner in voters:
            response = "support" if rng.random() < 0.85 else rng.choice(("object", "abstain"))
            ok(await client.post(f"{urls['priority']}/sessions/{sid}/responses",
                                 json={"partner_id": partner, "response": response},
                                 headers=badge(PARTNER, partner)))
        decision = ok(await client.post(f"{urls['priority']}/sessions/{sid}/decision",
                                        json={"decided_by": "facilitator-1"}, headers=facilitator))
        if decision["outcome"] == "agreed":
            record.priorities[decision["priority_id"]] = {"insight_id": insight_id, **insight}
        else:
            record.failed_sessions.append(decision["reasons"])


async def take_actions(client: httpx.AsyncClient, urls: dict[str, str], badge: Badges,
                       record: ThreadRecord) -> None:
    for priority_id, priority in record.priorities.items():
        description, service, area = ACTIONS[priority["category"]]
        accepted = ok(await client.post(f"{urls['priority']}/actions", json={
            "recorded_by": "service-lead-1", "priority_ids": [priority_id],
            "description": description, "service": service, "place": "East London",
            "framework": "Community Mental Health Framework", "framework_area": area,
            "status": "in_progress"}, headers=badge(ActorRole.SERVICE_LEAD, "service-lead-1")))
        record.actions[accepted["action_id"]] = {"priority_id": priority_id, **priority}


async def fail_one_session(client: httpx.AsyncClient, urls: dict[str, str], badge: Badges,
                           record: ThreadRecord) -> None:
    """A session too few partners came to: the rule says no, and why."""
    if not record.insights:
        return
    insight_id = next(iter(record.insights))
    facilitator = badge(PARTNER, "facilitator-2")
    session = ok(await client.post(f"{urls['priority']}/sessions", json={
        "opened_by": "facilitator-2", "insight_ids": [insight_id],
        "statement": "Move every drop-in to the town hall."}, headers=facilitator))
    for partner in PARTNERS[:2]:
        ok(await client.post(f"{urls['priority']}/sessions/{session['session_id']}/responses",
                             json={"partner_id": partner, "response": "support"},
                             headers=badge(PARTNER, partner)))
    decision = ok(await client.post(f"{urls['priority']}/sessions/{session['session_id']}/decision",
                                    json={"decided_by": "facilitator-2"}, headers=facilitator))
    record.failed_sessions.append(decision["reasons"])


async def visit_in_person(client: httpx.AsyncClient, urls: dict[str, str], badge: Badges,
                          expected: int, timeout_s: float = 90) -> int:
    """Peer workers tell people in person and close their follow-ups."""
    peer = badge(LISTENER, "peer-3")
    closed = 0
    deadline = asyncio.get_running_loop().time() + timeout_s
    while closed < expected and asyncio.get_running_loop().time() < deadline:
        tasks = ok_list(await client.get(f"{urls['feedback']}/peer-tasks", params={"status": "open"},
                                         headers=peer))
        for task in tasks:
            ok(await client.post(f"{urls['feedback']}/peer-tasks/{task['task_id']}/done",
                                 json={"actor_id": "peer-3", "outcome": "told"}, headers=peer))
            closed += 1
        if closed < expected:
            await asyncio.sleep(0.3)
    return closed


def ok_list(answer: httpx.Response) -> list[dict[str, Any]]:
    if answer.is_error:
        raise RuntimeError(f"{answer.request.url.path}: {answer.status_code}")
    items: list[dict[str, Any]] = answer.json()
    return items


def expected_notifications(
    record: ThreadRecord, today: date
) -> tuple[set[tuple[str, str]], int, int]:
    """(participant, action) pairs due now, how many are held for later, how many in person.

    What counts is each person's latest consent (the one given in their latest conversation)."""
    latest: dict[str, dict[str, Any]] = {}
    for conversation in record.conversations.values():  # in the order they were logged
        latest[conversation["participant_id"]] = conversation["consent"]
    due: set[tuple[str, str]] = set()
    held, in_person = 0, 0
    for action_id, action in record.actions.items():
        for pid in {record.conversations[cid]["participant_id"] for cid in action["conversation_ids"]}:
            consent = latest[pid]
            if pid in record.erased or pid in record.withdrawn or not consent["to_recontact"]:
                continue
            when = consent["earliest_contact_on"]
            if when and date.fromisoformat(when) > today:
                held += 1
                continue
            due.add((pid, action_id))
            in_person += consent["channel"] == "peer_in_person"
    return due, held, in_person
