"""Feedback end to end: real intake (conversations, consent, vault), real broker, real
PostgreSQL, a real SMTP server on loopback; insights, priorities and actions published onto
their topics with a correct hash chain."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts import ActorRole, parse_event
from contracts.topics import NOTIFICATIONS
from eventcore.deadletter import IncomingMessage
from eventcore.embedded import StackEndpoints
from eventcore.tokens import mint_token
from services.feedback.adapters.contacts import HttpContactReader
from tests.conftest import TEST_JWT_SECRET
from tests.integration.feedback_fixtures import (
    Clock,
    Mailbox,
    RunningFeedback,
    Upstream,
    eventually,
    publish,
    read_topic,
    running_feedback,
    smtp_server,
)
from tests.integration.intake_fixtures import RunningIntake, running_intake

pytestmark = pytest.mark.integration
TOKEN = mint_token(TEST_JWT_SECRET, ActorRole.SYSTEM, "feedback", ttl_s=3600)
PARTNERS, TRUST = Upstream("insight"), Upstream("trust.east-london")


@pytest.fixture(scope="module")
async def mailbox() -> AsyncIterator[tuple[Mailbox, int]]:
    async with smtp_server() as running:
        yield running


@pytest.fixture(scope="module")
async def intake(endpoints: StackEndpoints) -> AsyncIterator[RunningIntake]:
    async with running_intake(endpoints) as running:
        yield running


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def feedback(endpoints: StackEndpoints, intake: RunningIntake, clock: Clock,
                   mailbox: tuple[Mailbox, int]) -> AsyncIterator[RunningFeedback]:
    contacts = HttpContactReader("http://intake", TOKEN,
                                 transport=httpx.ASGITransport(app=intake.app))
    async with running_feedback(endpoints, contacts=contacts, clock=clock,
                                smtp_port=mailbox[1]) as running:
        yield running
    await contacts.aclose()


@pytest.fixture(scope="module")
async def producer(endpoints: StackEndpoints) -> AsyncIterator[AIOKafkaProducer]:
    started = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await started.start()
    yield started
    await started.stop()


class Person:
    def __init__(self, channel: str = "email", earliest: date | None = None) -> None:
        tag = secrets.token_hex(4)
        self.name, self.email = f"Amina Testperson{tag}", f"amina.{tag}@example.org"
        self.channel, self.earliest = channel, earliest

    async def speaks(self, intake: RunningIntake, *categories: str) -> dict[str, Any]:
        consent = {"to_store": True, "to_quote": False, "to_recontact": self.channel != "none",
                   "channel": self.channel, "earliest_contact_on": _iso(self.earliest)}
        answer = await intake.client.post("/conversations", json={
            "listener_id": "listener-1", "held_on": "2026-01-10", "setting": "community café",
            "place": "Tower Hamlets", "categories": list(categories or ("community_support",)),
            "summary": "Finds it hard to talk about low mood at home; the café group helps.",
            "participant": {"contact": {"name": self.name, "email": self.email}},
            "consent": consent})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


async def thread(producer: AIOKafkaProducer, conversations: list[dict[str, Any]],
                 *, action_first: bool = False, **action: Any) -> Any:
    insight = PARTNERS.insight([UUID(c["id"]) for c in conversations])
    priority = PARTNERS.priority([insight.data.insight_id])
    taken = TRUST.action([priority.data.priority_id], **action)
    await publish(producer, *([taken, priority, insight] if action_first
                              else [insight, priority, taken]))
    return taken


async def notifications(feedback: RunningFeedback, **query: Any) -> list[dict[str, Any]]:
    answer = await feedback.client.get("/notifications", params=query)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


async def status_of(feedback: RunningFeedback, action: Any, pid: str, wanted: str) -> Any:
    async def check() -> dict[str, Any] | None:
        rows = await notifications(feedback, action_id=str(action.data.action_id),
                                   participant_id=pid)
        return rows[0] if rows and rows[0]["status"] == wanted else None
    return await eventually(check, what=f"notification {wanted}")


async def test_each_consenting_voice_is_emailed_once_in_plain_words_whatever_the_order(
    feedback: RunningFeedback, intake: RunningIntake, producer: AIOKafkaProducer,
    mailbox: tuple[Mailbox, int], endpoints: StackEndpoints,
) -> None:
    amina, quiet = Person(), Person("none")
    said = [await amina.speaks(intake, "community_support", "continuity_of_care"),
            await quiet.speaks(intake)]
    action = await thread(producer, said, action_first=True)
    [message] = await eventually(lambda: _some(mailbox[0].to(amina.email)), what="the email")
    body = message.get_content()
    assert body.startswith(f"Hello {amina.name},")
    assert "Value of community support" in body and "Continuity of care" not in body
    assert "the community mental health team in Tower Hamlets is making a change" in body
    assert "NHS Talking Therapies drop-in" in body and "CMHT" not in body and "IAPT" not in body
    again = TRUST.action(list(action.data.priority_ids), action_id=action.data.action_id,
                         status="done", version=2)
    await publish(producer, action, again)  # a redelivery and a new version
    story = await eventually(lambda: _story_at(feedback, action, version=2), what="version 2")
    await asyncio.sleep(0.5)  # several scheduler rounds
    assert len(mailbox[0].to(amina.email)) == 1 and mailbox[0].to(quiet.email) == []
    assert story["told"]["participants_told"] == [said[0]["participant_id"]]
    assert story["heard"]["participants"] == 2 and story["changed"]["status"] == "done"
    row = await status_of(feedback, action, said[0]["participant_id"], "sent")
    raw = await read_topic(endpoints, NOTIFICATIONS, {row["notification_id"]})
    event = parse_event(raw[row["notification_id"]])
    assert event.type == "ParticipantNotified" and event.source == "feedback"
    assert event.data.chain.conversation_ids == (UUID(said[0]["id"]),)
    assert event.data.chain.priority_ids == action.data.priority_ids
    assert event.causationids[:2] == (str(action.id), said[0]["event_id"])
    assert event.correlationid == action.correlationid


async def test_a_notification_before_the_earliest_contact_day_is_held_then_sent_when_due(
    feedback: RunningFeedback, intake: RunningIntake, producer: AIOKafkaProducer,
    mailbox: tuple[Mailbox, int], clock: Clock,
) -> None:
    later = Person(earliest=clock.today + timedelta(days=30))
    said = await later.speaks(intake)
    action = await thread(producer, [said])
    held = await status_of(feedback, action, said["participant_id"], "held")
    assert held["due_on"] == later.earliest.isoformat()  # type: ignore[union-attr]
    await asyncio.sleep(0.3)
    assert mailbox[0].to(later.email) == []
    clock.today = clock.today + timedelta(days=30)
    await eventually(lambda: _some(mailbox[0].to(later.email)), what="the email when due")


@pytest.mark.parametrize("change", ["withdraw", "erase"])
async def test_someone_who_withdraws_or_is_erased_is_never_contacted(
    change: str, feedback: RunningFeedback, intake: RunningIntake,
    producer: AIOKafkaProducer, mailbox: tuple[Mailbox, int], clock: Clock,
) -> None:
    person = Person(earliest=clock.today + timedelta(days=10))
    said = await person.speaks(intake)
    pid = said["participant_id"]
    action = await thread(producer, [said])
    await status_of(feedback, action, pid, "held")
    if change == "withdraw":
        answer = await intake.client.post(f"/participants/{pid}/consent", json={
            "actor_id": "listener-1",
            "consent": {"to_quote": False, "to_recontact": False, "channel": "none"}})
    else:
        answer = await intake.client.post(f"/participants/{pid}/erasure",
                                          json={"actor_id": "listener-1"})
    assert answer.status_code == 200, answer.text
    cancelled = await status_of(feedback, action, pid, "cancelled")
    assert cancelled["reason"] == ("consent_withdrawn" if change == "withdraw" else "erased")
    clock.today = clock.today + timedelta(days=10)
    await asyncio.sleep(0.5)
    assert mailbox[0].to(person.email) == []


async def test_in_person_feedback_becomes_a_peer_task_then_a_recorded_notification(
    feedback: RunningFeedback, intake: RunningIntake, producer: AIOKafkaProducer,
    mailbox: tuple[Mailbox, int], endpoints: StackEndpoints,
) -> None:
    person = Person("peer_in_person")
    said = await person.speaks(intake, "cultural_factors")
    await thread(producer, [said])

    async def task() -> dict[str, Any] | None:
        tasks = (await feedback.client.get("/peer-tasks")).json()
        return next((t for t in tasks if t["participant_id"] == said["participant_id"]), None)

    found = await eventually(task, what="a peer task")
    assert "community mental health team" in found["brief"]
    assert person.name not in found["brief"] and person.email not in str(found)
    done = await feedback.client.post(f"/peer-tasks/{found['task_id']}/done",
                                      json={"actor_id": "peer-3"})
    assert done.status_code == 200 and done.json()["recorded"] is True
    again = await feedback.client.post(f"/peer-tasks/{found['task_id']}/done",
                                       json={"actor_id": "peer-3"})
    assert again.status_code == 409
    raw = await read_topic(endpoints, NOTIFICATIONS, {found["notification_id"]})
    event = parse_event(raw[found["notification_id"]])
    assert event.type == "ParticipantNotified"
    assert event.data.channel == "peer_in_person" and event.actorid == "peer-3"
    assert event.data.points_answered == ("community_support",)
    assert mailbox[0].to(person.email) == []


async def test_nothing_personal_stays_in_feedback_after_sending(
    feedback: RunningFeedback, intake: RunningIntake, producer: AIOKafkaProducer,
    mailbox: tuple[Mailbox, int],
) -> None:
    person = Person()
    said = await person.speaks(intake)
    await thread(producer, [said])
    await eventually(lambda: _some(mailbox[0].to(person.email)), what="the email")
    pool = feedback.app.state.runtime.pool
    async with pool.acquire() as conn:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'feedback'")
        for table in (t["tablename"] for t in tables):
            text = " ".join(await conn.fetchval(
                f"SELECT coalesce(array_agg(t::text), '{{}}') FROM feedback.{table} t"))
            for secret in (person.name, person.email, "Testperson"):
                assert secret not in text, f"{table} keeps personal data"


async def _some(found: list[Any]) -> list[Any] | None:
    return found or None


async def _story_at(feedback: RunningFeedback, action: Any, version: int) -> Any:
    answer = await feedback.client.get(f"/story/{action.data.action_id}")
    story = answer.json() if answer.status_code == 200 else None
    return story if story and story["changed"]["version"] == version else None


def _scenario(later: date) -> tuple[list[Any], dict[str, str], Any]:
    """A whole thread out of order, with one person who withdraws and one who is erased."""
    listened = Upstream("intake")
    people = {name: "p_" + secrets.token_hex(6) for name in ("stays", "withdraws", "erased")}
    said = [listened.conversation(pid, earliest=later) for pid in people.values()]
    insight = PARTNERS.insight([c.data.conversation_id for c in said])
    priority = PARTNERS.priority([insight.data.insight_id])
    taken = TRUST.action([priority.data.priority_id])
    events = [taken, priority, *said, insight,
              listened.consent_changed(people["withdraws"], 2, "none"),
              listened.erased(people["erased"], 2)]
    return events, people, taken


async def _planned(feedback: RunningFeedback, people: dict[str, str], action: Any
                   ) -> dict[str, str]:
    found = {}
    for name, pid in people.items():
        found[name] = await feedback.fetchval(
            "SELECT status || coalesce(':' || reason, '') FROM notifications"
            " WHERE participant_id = $1 AND action_id = $2", pid, action.data.action_id)
    return found


async def test_a_batch_plans_exactly_what_one_message_at_a_time_plans(
    feedback: RunningFeedback, clock: Clock,
) -> None:
    [consumer] = feedback.runtime.consumers
    later = clock.today + timedelta(days=60)
    outcomes = {}
    for mode in ("batch", "one by one"):
        events, people, action = _scenario(later)
        messages = [IncomingMessage("t", 0, n, None, e.model_dump_json().encode())
                    for n, e in enumerate(events)]
        if mode == "batch":
            statuses = [o.status for o in await consumer.process_batch(messages)]
        else:
            statuses = [(await consumer.process(m)).status for m in messages]
        assert statuses == ["applied"] * len(events), (mode, statuses)
        outcomes[mode] = await _planned(feedback, people, action)
    assert outcomes["batch"] == outcomes["one by one"] == {
        "stays": "planned", "withdraws": "cancelled:consent_withdrawn",
        "erased": "cancelled:erased"}


async def test_an_event_delivered_again_is_kept_as_one_fact(feedback: RunningFeedback) -> None:
    """Twice in one batch, again alone, again in a later batch: one fact is kept of it (the
    inbox admits an event once per consumer, and received_facts is keyed by event too)."""
    [consumer] = feedback.runtime.consumers
    listened = Upstream("intake")
    said = [listened.conversation("p_" + secrets.token_hex(6)) for _ in range(2)]
    first, second = (IncomingMessage("t", 0, n, None, e.model_dump_json().encode())
                     for n, e in enumerate(said))
    assert [o.status for o in await consumer.process_batch([first, second, first])] == [
        "applied", "applied", "duplicate"]
    assert (await consumer.process(first)).status == "duplicate"
    assert [o.status for o in await consumer.process_batch([second, first])] == [
        "duplicate", "duplicate"]
    kept = await feedback.fetch("SELECT event_id, count(*) AS n FROM received_facts"
                                " WHERE event_id = ANY($1::uuid[]) GROUP BY event_id",
                                [e.id for e in said])
    assert sorted((r["event_id"], r["n"]) for r in kept) == sorted((e.id, 1) for e in said)


async def test_a_batch_reaching_several_actions_plans_each_as_if_alone(
    feedback: RunningFeedback,
) -> None:
    """Three actions in one batch: two share a person (one conversation feeds both), one has
    a priority nobody has heard of yet. Each plans exactly its own people."""
    [consumer] = feedback.runtime.consumers
    listened = Upstream("intake")
    shared, first_only, second_only = ("p_" + secrets.token_hex(6) for _ in range(3))
    said = {pid: listened.conversation(pid) for pid in (shared, first_only, second_only)}
    one = PARTNERS.insight([said[shared].data.conversation_id,
                            said[first_only].data.conversation_id])
    two = PARTNERS.insight([said[shared].data.conversation_id,
                            said[second_only].data.conversation_id])
    first, second = PARTNERS.priority([one.data.insight_id]), PARTNERS.priority([two.data.insight_id])
    taken = [TRUST.action([first.data.priority_id]), TRUST.action([second.data.priority_id]),
             TRUST.action([uuid4()])]  # its priority never arrives
    events = [*taken, first, second, one, two, *said.values()]
    messages = [IncomingMessage("t", 0, n, None, e.model_dump_json().encode())
                for n, e in enumerate(events)]
    assert [o.status for o in await consumer.process_batch(messages)] == ["applied"] * len(events)
    planned = {}
    for action in taken:
        planned[action.data.action_id] = sorted(
            r["participant_id"] for r in await feedback.fetch(
                "SELECT participant_id FROM notifications WHERE action_id = $1",
                action.data.action_id))
    assert planned == {taken[0].data.action_id: sorted([shared, first_only]),
                       taken[1].data.action_id: sorted([shared, second_only]),
                       taken[2].data.action_id: []}
