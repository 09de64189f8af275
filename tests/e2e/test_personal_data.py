"""Personal data, end to end across the four services as separate processes.

Six people with known names, emails, phones and words are heard, cited, prioritised and told what
changed (by email, one in person); one is erased after being cited, one withdraws consent, one is
erased after being told. Then every byte the system keeps outside intake's vault is searched for
each person's name, email, phone and words: every topic (all partitions, from the beginning,
dead letters included), every table of every service schema (the vault's own tables too: they may
hold only ciphertext), the service logs with their exported traces (OTEL_TRACES_EXPORTER=console,
so each span lands in its service's log) and the broker's and database's own logs. Zero hits.

Erasure and withdrawal take effect everywhere: no notification after them, the erased person's
words unreadable through intake's API and gone from what partners browse.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import ActorRole, parse_event
from contracts.topics import ALL_TOPICS, NOTIFICATIONS
from eventcore.embedded import EmbeddedStack, StackEndpoints
from eventcore.settings import CoreSettings
from eventcore.tokens import mint_token
from golden_thread.demo.mailbox import MailServer
from golden_thread.demo.processes import ServiceProcess, start_service
from services.intake.adapters.vault import new_master_key

pytestmark = pytest.mark.e2e
T = TypeVar("T")
SECRET = secrets.token_urlsafe(32)
ADMIN = {"authorization": f"Bearer {mint_token(SECRET, ActorRole.ADMIN, 'e2e-admin', 7200)}"}
CATEGORY = "continuity_of_care"


@dataclass
class Person:
    name: str
    email: str
    phone: str
    quote: str
    channel: str = "email"
    participant_id: str = ""
    conversation_id: str = ""

    def needles(self) -> dict[str, str]:
        """Everything that identifies them, as it might be written anywhere."""
        found = {"name": self.name, "email": self.email, "phone": self.phone,
                 "phone digits": re.sub(r"\D", "", self.phone)[2:], "quote": self.quote}
        found |= {f"name part {p}": p for p in re.split(r"[\s-]+", self.name) if len(p) >= 6}
        for what, text in list(found.items()):
            escaped = json.dumps(text)[1:-1]  # as JSON with ensure_ascii writes it
            if escaped != text:
                found[f"{what} (escaped)"] = escaped
        return found


PEOPLE = [
    Person("Zanele Okonkwo-Brightwater", "zanele.ob.7q2@example.org", "+44 7700 900451",
           "I waited nine months and nobody from the Riverside clinic ever rang me back"),
    Person("Siobhán Ní Bhriain-Kowalczyk", "siobhan.nbk.4x8@example.org", "+44 7700 900452",
           "The Thursday group at the Bethnal library is the only place I feel heard"),
    Person("Tomasz Wierzbicki-Adeyemi", "tomasz.wa.9k1@example.org", "+44 7700 900453",
           "My GP kept saying wait and see while the rent arrears piled up"),
    Person("Farhana Choudhury-Lindqvist", "farhana.cl.3m5@example.org", "+44 7700 900454",
           "I had to explain my whole story again to the fourth new worker this year"),
    Person("Marcus Oyelaran-Petrov", "marcus.op.6t7@example.org", "+44 7700 900455",
           "Nobody at the crisis line spoke Yoruba so I hung up", channel="peer_in_person"),
    Person("Leila Haddad-MacAllister", "leila.hm.2w9@example.org", "+44 7700 900456",
           "After discharge from the Homerton ward I heard nothing for eleven weeks"),
]
ERASED_EARLY, WITHDRAWN, ERASED_LATE = PEOPLE[0], PEOPLE[1], PEOPLE[2]
TOLD_TWICE = [PEOPLE[3], PEOPLE[5]]
IN_PERSON = PEOPLE[4]


@dataclass
class System:
    endpoints: StackEndpoints
    urls: dict[str, str]
    work: Path
    procs: dict[str, ServiceProcess]
    exit_codes: dict[str, int] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop every service (flushing its spans to its log) once."""
        for name, proc in self.procs.items():
            self.exit_codes.setdefault(name, proc.stop())


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture(scope="module")
async def system(mail: MailServer, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[System]:
    work = tmp_path_factory.mktemp("personal-data")
    async with EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=work / "stack") as ep:
        env = {**ep.as_env(), "GT_RELAY_POLL_INTERVAL_S": "0.2",
               "GT_INTAKE_VAULT_MASTER_KEY": new_master_key(), "GT_AUTH_JWT_SECRET": SECRET,
               "GT_FEEDBACK_SMTP_HOST": "127.0.0.1", "GT_FEEDBACK_SMTP_PORT": str(mail.port),
               "GT_FEEDBACK_SCHEDULER_INTERVAL_S": "0.3", "OTEL_TRACES_EXPORTER": "console",
               "OTEL_BSP_SCHEDULE_DELAY": "500", "PYTHONPATH": os.pathsep.join(sys.path)}
        procs = {"intake": start_service("intake", env, work)}
        running = System(ep, {}, work, procs)
        try:
            await procs["intake"].wait_ready()
            env["GT_FEEDBACK_INTAKE_URL"] = procs["intake"].url
            for name in ("insight", "priority", "feedback"):
                procs[name] = start_service(name, env, work)
            await asyncio.gather(*(p.wait_ready() for p in procs.values()))
            running.urls = {name: p.url for name, p in procs.items()}
            yield running
        finally:
            running.stop()


async def until(check: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = 60) -> T:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code < 300, f"{answer.request.url.path}: {answer.status_code} {answer.text}"
    return answer.json()


# --- the journey ------------------------------------------------------------------------------


async def hear_everyone(client: httpx.AsyncClient, url: dict[str, str]) -> None:
    for person in PEOPLE:
        logged = ok(await client.post(f"{url['intake']}/conversations", json={
            "listener_id": "listener-e2e", "held_on": "2026-01-12", "setting": "community café",
            "place": "Tower Hamlets", "categories": [CATEGORY],
            "summary": "Had to retell their story to each new worker and lost touch after "
                       "discharge.",
            "quotes": [person.quote], "support_shared": ["community mental health team"],
            "participant": {"contact": {"name": person.name, "email": person.email,
                                        "phone": person.phone}},
            "consent": {"to_store": True, "to_quote": True, "to_recontact": True,
                        "channel": person.channel, "earliest_contact_on": None}}))
        person.participant_id, person.conversation_id = logged["participant_id"], logged["id"]


async def agree_a_priority(client: httpx.AsyncClient, url: dict[str, str]) -> str:
    async def insight_sees_all() -> bool:
        answers = [await client.get(f"{url['insight']}/conversations/{p.conversation_id}")
                   for p in PEOPLE]
        return all(a.status_code == 200 for a in answers)

    await until(insight_sees_all, "insight to receive every conversation")
    insight = ok(await client.post(f"{url['insight']}/insights", json={
        "partner_id": "partner-1", "category": CATEGORY,
        "statement": "People want one worker who knows them, and contact after discharge.",
        "conversation_ids": [p.conversation_id for p in PEOPLE]}))

    async def priority_sees_it() -> bool:
        items = ok(await client.get(f"{url['priority']}/insights"))
        items = items["items"] if isinstance(items, dict) else items
        return any(str(i["insight_id"]) == insight["id"] for i in items)

    await until(priority_sees_it, "priority to receive the insight")
    session = ok(await client.post(f"{url['priority']}/sessions", json={
        "opened_by": "facilitator-1", "insight_ids": [insight["id"]],
        "statement": "Give everyone a named key worker who stays with them."}))
    for partner in ("partner-1", "partner-2", "partner-3"):
        ok(await client.post(f"{url['priority']}/sessions/{session['session_id']}/responses",
                             json={"partner_id": partner, "response": "support"}))
    decision = ok(await client.post(
        f"{url['priority']}/sessions/{session['session_id']}/decision",
        json={"decided_by": "facilitator-1"}))
    assert decision["outcome"] == "agreed", decision
    return str(decision["priority_id"])


async def take_action(client: httpx.AsyncClient, url: dict[str, str], priority_id: str,
                      description: str) -> str:
    action = ok(await client.post(f"{url['priority']}/actions", json={
        "recorded_by": "lead-1", "priority_ids": [priority_id], "description": description,
        "service": "community mental health team", "place": "Tower Hamlets",
        "framework": "Community Mental Health Framework", "framework_area": "Continuity of care",
        "status": "in_progress"}))
    return str(action["action_id"])


async def erase(client: httpx.AsyncClient, url: dict[str, str], person: Person) -> None:
    ok(await client.post(f"{url['intake']}/participants/{person.participant_id}/erasure",
                         json={"actor_id": "listener-e2e"}))


async def withdraw(client: httpx.AsyncClient, url: dict[str, str], person: Person) -> None:
    ok(await client.post(f"{url['intake']}/participants/{person.participant_id}/consent", json={
        "actor_id": "listener-e2e", "consent": {"to_quote": False, "to_recontact": False,
                                                "channel": "none", "earliest_contact_on": None}}))


def letters_to(mail: MailServer, person: Person) -> list[Any]:
    return [m for m in list(mail.mailbox.messages) if person.email in str(m.get("To", ""))]


async def visit_in_person(client: httpx.AsyncClient, url: dict[str, str]) -> None:
    """A peer worker tells, in person, whoever has an open follow-up (only ever one person)."""
    for task in ok(await client.get(f"{url['feedback']}/peer-tasks", params={"status": "open"})):
        assert task["participant_id"] == IN_PERSON.participant_id, task
        ok(await client.post(f"{url['feedback']}/peer-tasks/{task['task_id']}/done",
                             json={"actor_id": "peer-3", "outcome": "told"}))


async def everyone_told(client: httpx.AsyncClient, url: dict[str, str], mail: MailServer,
                        emailed: list[Person], letters: int) -> None:
    """Wait until each of `emailed` has `letters` letters, visiting in person meanwhile."""
    async def done() -> bool:
        await visit_in_person(client, url)
        return all(len(letters_to(mail, p)) >= letters for p in emailed)

    await until(done, f"{letters} letter(s) to each of {len(emailed)} people", timeout_s=90)


async def notified(endpoints: StackEndpoints) -> list[tuple[str, str]]:
    """(participant, action) of every ParticipantNotified on the broker."""
    events = [parse_event(r.value) for r in await read_all(endpoints, [NOTIFICATIONS])]
    return [(str(e.data.participant_id), str(e.data.action_id)) for e in events
            if e.type == "ParticipantNotified"]


# --- reading back everything that is kept -----------------------------------------------------


async def read_all(endpoints: StackEndpoints, topics: list[str]) -> list[Any]:
    """Every record of the topics, every partition, from the beginning to the end."""
    reader = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                              enable_auto_commit=False, fetch_max_wait_ms=10,
                              max_partition_fetch_bytes=8 * 1024 * 1024)
    await reader.start()
    found: list[Any] = []
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in sorted(reader.partitions_for_topic(t) or {0})]
        reader.assign(parts)
        await reader.seek_to_beginning(*parts)
        ends = await reader.end_offsets(parts)
        while [tp for tp, end in ends.items() if await reader.position(tp) < end]:
            for records in (await reader.getmany(timeout_ms=500)).values():
                found.extend(records)
    finally:
        await reader.stop()
    return found


async def every_table(endpoints: StackEndpoints) -> dict[str, str]:
    """'schema.table' -> every row as text, for every table outside PostgreSQL's own schemas."""
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN"
            " ('pg_catalog', 'information_schema') ORDER BY 1, 2")
        return {f"{t['schemaname']}.{t['tablename']}": "\n".join(
            r[0] for r in await conn.fetch(
                f'SELECT t::text FROM "{t["schemaname"]}"."{t["tablename"]}" t'))
            for t in tables}
    finally:
        await conn.close()


def hits(where: str, haystack: str) -> list[str]:
    lowered = haystack.casefold()
    return [f"{where}: {p.name}'s {what}" for p in PEOPLE
            for what, needle in p.needles().items() if needle.casefold() in lowered]


# --- the test ---------------------------------------------------------------------------------


async def test_personal_data_stays_in_the_vault_and_erasure_reaches_everywhere(
    system: System, mail: MailServer,
) -> None:
    url, endpoints = system.urls, system.endpoints
    async with httpx.AsyncClient(timeout=30, headers=ADMIN) as client:
        await hear_everyone(client, url)
        priority_id = await agree_a_priority(client, url)
        await erase(client, url, ERASED_EARLY)  # cited already: it must not be told
        await withdraw(client, url, WITHDRAWN)
        first = await take_action(client, url, priority_id,
                                  "Each person now has a named key worker who stays with them.")
        await everyone_told(client, url, mail, [ERASED_LATE, *TOLD_TWICE], letters=1)
        await erase(client, url, ERASED_LATE)  # told once: never again
        second = await take_action(client, url, priority_id,
                                   "Everyone discharged gets a call from their key worker.")
        await everyone_told(client, url, mail, TOLD_TWICE, letters=2)

        async def told_in_person_twice() -> list[tuple[str, str]] | None:
            await visit_in_person(client, url)
            found = await notified(endpoints)
            return found if (IN_PERSON.participant_id, second) in found else None

        told = set(await until(told_in_person_twice, "the second in-person follow-up"))
        await asyncio.sleep(2)  # time for anything wrongly planned to go out too
        await erasure_reaches_everywhere(client, url)

    expected = {(p.participant_id, a) for p in (*TOLD_TWICE, IN_PERSON) for a in (first, second)}
    expected.add((ERASED_LATE.participant_id, first))
    assert set(await notified(endpoints)) == expected == told
    assert not letters_to(mail, ERASED_EARLY) and not letters_to(mail, WITHDRAWN)
    assert len(letters_to(mail, ERASED_LATE)) == 1

    # The search finds what it looks for: a letter names its reader.
    assert hits("letter", letters_to(mail, TOLD_TWICE[0])[0].as_string())
    system.stop()  # flush every service's spans into its log before reading the logs
    assert system.exit_codes == dict.fromkeys(system.procs, 0), system.exit_codes
    await nothing_personal_outside_the_vault(system)


async def erasure_reaches_everywhere(client: httpx.AsyncClient, url: dict[str, str]) -> None:
    for person in PEOPLE:
        conversation = ok(await client.get(
            f"{url['intake']}/conversations/{person.conversation_id}"))
        partners_see = ok(await client.get(
            f"{url['insight']}/conversations/{person.conversation_id}"))
        contact = await client.get(
            f"{url['intake']}/internal/participants/{person.participant_id}/contact")
        if person in (ERASED_EARLY, ERASED_LATE):
            assert conversation["quotes"] == ["[erased]"], conversation
            assert partners_see["erased"] and partners_see["summary"] is None, partners_see
            assert contact.status_code == 410, contact.text
        else:  # the check can see words when they are there
            assert conversation["quotes"] == [person.quote], conversation
            assert contact.status_code == 200 and contact.json()["email"] == person.email
    listed = ok(await client.get(f"{url['intake']}/conversations", params={"limit": 500}))
    shown = {c["participant_id"] for c in listed}
    assert ERASED_EARLY.participant_id not in shown and ERASED_LATE.participant_id not in shown


async def nothing_personal_outside_the_vault(system: System) -> None:
    found: list[str] = []
    records = await read_all(system.endpoints, list(ALL_TOPICS))
    # 6 conversations, 2 erasures and a withdrawal, an insight, a priority, 2 actions, 7 told
    assert len(records) >= 20, "the topics hold the whole journey"
    for r in records:
        raw = b"\n".join([r.key or b"", r.value or b"", *(v for _, v in r.headers)])
        found += hits(f"topic {r.topic}", raw.decode("utf-8", "replace"))
    tables = await every_table(system.endpoints)
    assert {"intake.participant_keys", "intake.participant_contacts", "intake.conversations",
            "insight.conversations", "feedback.notifications"} <= set(tables)
    sealed = [r for r in tables["intake.participant_contacts"].splitlines() if r]
    assert len(sealed) == len(PEOPLE) - 2, "the vault holds the contacts of all but the erased"
    for table, rows in tables.items():
        found += hits(f"table {table}", rows)
    logs = {p.name: p.log_path.read_text(errors="replace") for p in system.procs.values()}
    for name, text in logs.items():
        assert '"trace_id"' in text, f"{name}'s spans were not exported to its log"
        found += hits(f"{name} log and traces", text)
    for path in sorted((system.work / "stack").rglob("*.log")):
        found += hits(f"{path.name}", path.read_text(errors="replace"))
    assert not found, "personal data outside the vault:\n" + "\n".join(sorted(set(found)))
