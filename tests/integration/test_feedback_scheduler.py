"""The feedback policies and sender on a real PostgreSQL, without the broker: arrival order,
two senders at once, the send-time consent check, and the crash window after SMTP."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
import pytest

from contracts import RecontactConsent
from eventcore.db import create_pool, migrate
from eventcore.embedded import StackEndpoints
from eventcore.store import EventStore
from services.feedback.adapters.mailer import OutgoingEmail
from services.feedback.bootstrap import MIGRATIONS
from services.feedback.domain.categories import load_category_names
from services.feedback.domain.delivery import ContactCard, ContactLookup, Gone
from services.feedback.domain.glossary import shipped_glossary
from services.feedback.domain.messages import Wording
from services.feedback.handlers import Policies
from services.feedback.projections import GRAPH_TABLES, rebuild
from services.feedback.scheduler import Scheduler
from tests.conftest import create_database
from tests.integration.feedback_fixtures import Clock, Upstream

pytestmark = pytest.mark.integration

POLICIES = Policies(notify_from="in_progress")
INTAKE, PARTNERS = Upstream("intake"), Upstream("insight")


@dataclass
class FakeContacts:
    overrides: dict[str, ContactLookup] = field(default_factory=dict)

    async def read(self, participant_id: str) -> ContactLookup:
        if participant_id in self.overrides:
            return self.overrides[participant_id]
        return ContactCard(participant_id, None, f"{participant_id}@example.org", EMAIL)


EMAIL = RecontactConsent(to_quote=False, to_recontact=True, channel="email")
NONE = RecontactConsent(to_quote=False, to_recontact=False, channel="none")


@dataclass
class FakeMailer:
    sent: list[OutgoingEmail] = field(default_factory=list)

    async def send(self, email: OutgoingEmail) -> None:
        await asyncio.sleep(0.01)  # long enough for a second sender to try the same row
        self.sent.append(email)


@pytest.fixture(scope="module")
async def pool(endpoints: StackEndpoints) -> AsyncIterator[asyncpg.Pool]:
    url = await create_database(endpoints)
    await migrate(url, "feedback", [MIGRATIONS], source="feedback")
    created = await create_pool(url, "feedback")
    yield created
    await created.close()


def scheduler(pool: asyncpg.Pool, contacts: FakeContacts, mailer: FakeMailer,
              **kw: Any) -> Scheduler:
    wording = Wording(shipped_glossary(), load_category_names(None))
    return Scheduler(pool=pool, store=EventStore("feedback"), contacts=contacts, mailer=mailer,
                     wording=wording, today=Clock(), mail_domain="golden-thread.test", **kw)


async def consume(pool: asyncpg.Pool, *events: Any) -> None:
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await POLICIES.when_upstream_event_arrives_resolve_who_to_tell(conn, event)


def people(n: int) -> list[str]:
    return [f"p_{secrets.token_hex(6)}" for _ in range(n)]


def thread(pids: list[str]) -> tuple[list[Any], Any]:
    """Conversations, insight, priority and action for these people (in thread order)."""
    conversations = [INTAKE.conversation(pid) for pid in pids]
    insight = PARTNERS.insight([c.data.conversation_id for c in conversations])
    priority = PARTNERS.priority([insight.data.insight_id])
    action = PARTNERS.action([priority.data.priority_id])
    return [*conversations, insight, priority], action


async def planned_for_new_people(pool: asyncpg.Pool, n: int) -> list[str]:
    """n new people whose whole thread feedback has consumed: each has a planned notification."""
    pids = people(n)
    upstream, action = thread(pids)
    await consume(pool, *upstream, action)
    return pids


async def planned_for(pool: asyncpg.Pool, action: Any) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT participant_id FROM notifications WHERE action_id = $1"
                                " ORDER BY participant_id", action.data.action_id)
    return [r["participant_id"] for r in rows]


async def test_the_same_people_are_planned_whatever_order_the_thread_arrives_in(
    pool: asyncpg.Pool
) -> None:
    pids = people(3)
    upstream, action = thread(pids)
    await consume(pool, action, *reversed(upstream))  # the action first, its voices last
    assert await planned_for(pool, action) == sorted(pids)
    upstream, action = thread(pids[:2])
    await consume(pool, *upstream, action)
    assert await planned_for(pool, action) == sorted(pids[:2])


async def test_planning_logs_one_line_per_batch_with_its_counts(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    pids = people(3)
    upstream, action = thread(pids)
    with caplog.at_level(logging.INFO, logger="services.feedback.planning"):
        await consume(pool, *upstream, action)
    lines = [r.getMessage() for r in caplog.records if r.name == "services.feedback.planning"]
    assert lines == ["planned 3 notifications about 1 actions"]
    assert not any(pid in line for pid in pids for line in lines)


async def test_a_later_version_of_an_action_plans_nobody_twice(pool: asyncpg.Pool) -> None:
    upstream, action = thread(people(2))
    await consume(pool, *upstream, action)
    again = PARTNERS.action(list(action.data.priority_ids), action_id=action.data.action_id,
                            status="done", version=2)
    await consume(pool, again, action)
    assert len(await planned_for(pool, action)) == 2


async def test_two_senders_at_once_send_each_notification_exactly_once(
    pool: asyncpg.Pool
) -> None:
    upstream, action = thread(people(12))
    await consume(pool, *upstream, action)
    one, two = FakeMailer(), FakeMailer()
    await asyncio.gather(scheduler(pool, FakeContacts(), one).run_once(),
                         scheduler(pool, FakeContacts(), two).run_once())
    sent = [m.message_id for m in one.sent + two.sent]
    assert one.sent and two.sent and len(sent) == len(set(sent))
    async with pool.acquire() as conn:
        ours = await conn.fetch("SELECT message_id, status FROM notifications"
                                " WHERE action_id = $1", action.data.action_id)
        told = await conn.fetchval(
            "SELECT count(*) FROM events WHERE body->'data'->>'action_id' = $1",
            str(action.data.action_id))
    assert len(ours) == 12 and {r["status"] for r in ours} == {"sent"}
    assert {r["message_id"] for r in ours} <= set(sent) and told == 12


async def test_intake_saying_withdrawn_or_erased_at_send_time_means_never_contacted(
    pool: asyncpg.Pool
) -> None:
    withdrawn, erased = pids = people(2)
    upstream, action = thread(pids)
    await consume(pool, *upstream, action)
    contacts = FakeContacts({withdrawn: ContactCard(withdrawn, "A", "a@example.org", NONE),
                             erased: Gone(erased, "erased")})
    mailer = FakeMailer()
    await scheduler(pool, contacts, mailer).run_once()
    assert mailer.sent == []
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT participant_id, status, reason FROM notifications"
                                " WHERE action_id = $1", action.data.action_id)
    assert {r["participant_id"]: (r["status"], r["reason"]) for r in rows} == {
        withdrawn: ("cancelled", "consent_withdrawn"), erased: ("cancelled", "erased")}


async def test_a_notification_left_sending_after_a_crash_is_resent_with_the_same_message_id(
    pool: asyncpg.Pool
) -> None:
    upstream, action = thread(people(1))
    await consume(pool, *upstream, action)
    mailer = FakeMailer()
    crashed = scheduler(pool, FakeContacts(), mailer)
    claimed = await crashed._claim()  # the SMTP server accepts, then the process dies
    assert claimed is not None and claimed.message_id is not None
    await mailer.send(OutgoingEmail("x@example.org", "s", "b", claimed.message_id))
    await scheduler(pool, FakeContacts(), mailer, lease_s=600).run_once()
    assert len(mailer.sent) == 1  # within the lease nobody touches it
    await scheduler(pool, FakeContacts(), mailer, lease_s=0.001).run_once()
    assert [m.message_id for m in mailer.sent] == [claimed.message_id] * 2
    async with pool.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM notifications WHERE notification_id"
                                     " = $1", claimed.notification_id)
        events = await conn.fetchval("SELECT count(*) FROM events WHERE subject = $1",
                                     str(claimed.notification_id))
    assert (status, events) == ("sent", 1)


async def test_withdrawing_and_consenting_again_brings_the_notification_back(
    pool: asyncpg.Pool
) -> None:
    [pid] = people(1)
    upstream, action = thread([pid])
    await consume(pool, *upstream, action, INTAKE.consent_changed(pid, 2, "none"))
    async with pool.acquire() as conn:
        status = "SELECT status FROM notifications WHERE participant_id = $1"
        assert await conn.fetchval(status, pid) == "cancelled"
        await consume(pool, INTAKE.consent_changed(pid, 3, "peer_in_person"))
        assert await conn.fetchval(status, pid) == "planned"
        await consume(pool, INTAKE.erased(pid, 4), INTAKE.consent_changed(pid, 5, "email"))
        assert await conn.fetchval(status, pid) == "cancelled"


async def test_a_planned_notification_follows_a_new_channel_and_day_and_others_stay_untouched(
    pool: asyncpg.Pool
) -> None:
    moves, stays = await planned_for_new_people(pool, 2)
    query = ("SELECT participant_id, channel, due_on, updated_at FROM notifications"
             " WHERE participant_id = ANY($1::text[]) AND status = 'planned'")
    async with pool.acquire() as conn:
        before = {r["participant_id"]: r for r in await conn.fetch(query, [moves, stays])}
        later = date(2031, 5, 1)
        # One batch: the one who asks for a peer from a later day, and one who asks again for
        # what they already have.
        async with conn.transaction():
            await POLICIES.when_upstream_events_arrive_resolve_who_to_tell(conn, [
                INTAKE.consent_changed(moves, 2, "peer_in_person", later),
                INTAKE.consent_changed(stays, 2, "email")])
        after = {r["participant_id"]: r for r in await conn.fetch(query, [moves, stays])}
        # The batch plans its statements for its own arrays, in its transaction only.
        assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
    assert set(before) == set(after) == {moves, stays}
    assert (after[moves]["channel"], after[moves]["due_on"]) == ("peer_in_person", later)
    assert after[stays] == before[stays]  # nothing to change: the row is not rewritten


async def test_rebuild_refolds_the_same_graph_and_keeps_what_was_sent(pool: asyncpg.Pool) -> None:
    upstream, action = thread(people(2))
    revised = PARTNERS.insight([upstream[0].data.conversation_id],
                               insight_id=upstream[2].data.insight_id, revision=2)
    await consume(pool, action, revised, *upstream)  # revision 2 arrives before revision 1
    assert await planned_for(pool, action) == [upstream[0].data.participant_id]
    await scheduler(pool, FakeContacts(), FakeMailer()).run_once()

    async def snapshot(conn: asyncpg.Connection) -> dict[str, list[str]]:
        return {t: await conn.fetchval(f"SELECT coalesce(array_agg(t::text ORDER BY t::text),"
                                       f" '{{}}') FROM {t} t") for t in GRAPH_TABLES}

    async with pool.acquire() as conn:
        before = await snapshot(conn)
        sent = await conn.fetch("SELECT notification_id FROM notifications WHERE status = 'sent'")
        await conn.execute("UPDATE notifications SET status = 'sending' WHERE status = 'sent'")
        assert await rebuild(conn, EventStore("feedback")) > 0
        assert await snapshot(conn) == before
        after = await conn.fetch("SELECT notification_id FROM notifications WHERE status = 'sent'")
    assert {r[0] for r in after} == {r[0] for r in sent}
    assert len(before["graph_insight_conversations"]) >= 1


async def test_a_new_conversation_changing_consent_is_followed_and_one_keeping_it_is_not(
    pool: asyncpg.Pool
) -> None:
    """Only people whose consent or erasure a batch changes are followed: a returning person
    who now says no is cancelled; one who says the same again is left as they were."""
    changes, keeps = await planned_for_new_people(pool, 2)
    query = ("SELECT participant_id, status, reason, updated_at FROM notifications"
             " WHERE participant_id = ANY($1::text[])")
    async with pool.acquire() as conn:
        before = {r["participant_id"]: r for r in await conn.fetch(query, [changes, keeps])}
        async with conn.transaction():
            await POLICIES.when_upstream_events_arrive_resolve_who_to_tell(conn, [
                INTAKE.conversation(changes, channel="none"),
                INTAKE.conversation(keeps)])
        after = {r["participant_id"]: r for r in await conn.fetch(query, [changes, keeps])}
    assert before[changes]["status"] == before[keeps]["status"] == "planned"
    assert (after[changes]["status"], after[changes]["reason"]) == ("cancelled",
                                                                     "consent_withdrawn")
    assert after[keeps] == before[keeps]


@pytest.mark.parametrize("how", ["consent changes", "conversations"])
async def test_consent_given_back_in_one_batch_undoes_what_the_sender_did_on_intakes_word(
    pool: asyncpg.Pool, how: str
) -> None:
    """The sender cancelled on intake's word (withdrawn at send time) before feedback heard of
    it; withdrawing and consenting again then arrive in one batch, leaving the graph as it was.
    The notification comes back all the same, whether the batch names the person in consent
    changes or only in conversations that carry their consent."""
    [pid] = await planned_for_new_people(pool, 1)
    withdrawn = FakeContacts({pid: ContactCard(pid, "A", "a@example.org", NONE)})
    await scheduler(pool, withdrawn, FakeMailer()).run_once()
    status = "SELECT status, reason FROM notifications WHERE participant_id = $1"
    async with pool.acquire() as conn:
        assert tuple(await conn.fetchrow(status, pid)) == ("cancelled", "consent_withdrawn")
        batch = ([INTAKE.consent_changed(pid, 2, "none"), INTAKE.consent_changed(pid, 3, "email")]
                 if how == "consent changes"
                 else [INTAKE.conversation(pid, channel="none"), INTAKE.conversation(pid)])
        async with conn.transaction():
            await POLICIES.when_upstream_events_arrive_resolve_who_to_tell(conn, batch)
        assert tuple(await conn.fetchrow(status, pid)) == ("planned", None)


async def test_a_peer_task_opened_on_intakes_word_is_undone_by_a_batch_leaving_email(
    pool: asyncpg.Pool
) -> None:
    """The sender handed a notification to a peer because intake said so at send time; the
    person's conversations then say peer and email again in one batch, leaving the graph at
    email. The notification goes back to email and the peer task is cancelled."""
    [pid] = await planned_for_new_people(pool, 1)
    peer = RecontactConsent(to_quote=False, to_recontact=True, channel="peer_in_person")
    await scheduler(pool, FakeContacts({pid: ContactCard(pid, "A", "a@example.org", peer)}),
                    FakeMailer()).run_once()
    query = ("SELECT n.status, n.channel, t.status AS task FROM notifications n"
             " JOIN peer_tasks t USING (notification_id) WHERE n.participant_id = $1")
    async with pool.acquire() as conn:
        assert tuple(await conn.fetchrow(query, pid)) == ("with_peer", "peer_in_person", "open")
        async with conn.transaction():
            await POLICIES.when_upstream_events_arrive_resolve_who_to_tell(conn, [
                INTAKE.conversation(pid, channel="peer_in_person"), INTAKE.conversation(pid)])
        assert tuple(await conn.fetchrow(query, pid)) == ("planned", "email", "cancelled")
