"""The sender: polls PostgreSQL for due notifications and delivers each exactly once.

Claiming uses FOR UPDATE SKIP LOCKED and commits a 'sending' state before anything leaves,
so two instances never take the same notification and a restart loses nothing (the queue is
the table). The crash window between the SMTP server accepting a message and our commit is
closed towards "told": a notification left 'sending' past the lease is sent again with the
same Message-ID (mail systems recognise the repeat), while ParticipantNotified can only ever be
recorded once (its subject is the notification id at version 1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg
from opentelemetry.metrics import Counter, Meter

from contracts import ActorRole
from eventcore.consumer import TRANSIENT_DB_ERRORS
from eventcore.errors import describe
from eventcore.store import EventStore
from services.feedback.adapters.contacts import ContactReader, ContactsUnavailable
from services.feedback.adapters.graph import load_action_graph
from services.feedback.adapters.mailer import Mailer, MailRejected, MailUnavailable, OutgoingEmail
from services.feedback.domain.chain import ActionNode, Thread, threads
from services.feedback.domain.delivery import AskPeer, Cancel, Hold, SendEmail, decide_delivery
from services.feedback.domain.messages import SUBJECT, Wording
from services.feedback.recording import Pending, record_told, thread_json

log = logging.getLogger(__name__)
OUR_OUTAGE_RETRY_S = 5.0
Clock = Callable[[], date]


def notification_counter(meter: Meter) -> Counter:
    """gt_notifications_total{channel, outcome}: what the sender did with each notification it
    took: sent, handed_to_peer, held, deferred (retried later), cancelled or failed."""
    return meter.create_counter(
        "gt_notifications", unit="{notification}",
        description="Notifications handled by the sender, by channel and outcome")


_CLAIM = """
WITH due AS (
    SELECT notification_id FROM notifications
     WHERE status = 'planned' AND (due_on IS NULL OR due_on <= $1) AND next_attempt_at <= now()
     ORDER BY due_on NULLS FIRST, planned_at LIMIT 1
       FOR UPDATE SKIP LOCKED)
UPDATE notifications n SET status = 'sending', sending_since = now(), updated_at = now(),
       attempts = n.attempts + 1,
       message_id = coalesce(n.message_id, '<' || n.notification_id || '@' || $2 || '>')
  FROM due WHERE n.notification_id = due.notification_id
RETURNING n.*"""


@dataclass
class Scheduler:
    pool: asyncpg.Pool
    store: EventStore
    contacts: ContactReader
    mailer: Mailer
    wording: Wording
    today: Clock
    mail_domain: str
    interval_s: float = 5.0
    lease_s: float = 600.0
    max_attempts: int = 8
    notifications: Counter | None = None

    def _count(self, channel: str, outcome: str) -> None:
        if self.notifications is not None:
            self.notifications.add(1, {"channel": channel, "outcome": outcome})

    async def run(self) -> None:
        """Deliver what is due, then sleep; until cancelled, outliving bad moments loudly."""
        while True:
            try:
                await self.run_once()
            except TRANSIENT_DB_ERRORS as exc:
                log.warning("feedback scheduler: database away (%s)", type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - the loop must go on; the row stays queued
                log.error("feedback scheduler: %s", describe(exc))
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> int:
        """Deliver every notification due now; returns how many were handled."""
        await self._recover_abandoned()
        handled = 0
        while (pending := await self._claim()) is not None:
            await self.deliver(pending)
            handled += 1
        return handled

    async def _claim(self) -> Pending | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(_CLAIM, self.today(), self.mail_domain)
        return None if row is None else Pending.of(row)

    async def _recover_abandoned(self) -> None:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """UPDATE notifications SET status = 'planned', sending_since = NULL,
                          updated_at = now()
                    WHERE status = 'sending'
                      AND sending_since < now() - make_interval(secs => $1)
                   RETURNING notification_id""", self.lease_s)
        for row in rows:
            log.warning("notification %s was left sending; it will be sent again with the same "
                        "Message-ID", row["notification_id"])

    async def deliver(self, pending: Pending) -> None:
        async with self.pool.acquire() as conn:
            graph = await load_action_graph(conn, pending.action_id)
        thread = threads(graph).get(pending.participant_id) if graph else None
        if graph is None or thread is None:
            return await self._close(pending, "cancelled", "no_longer_in_chain")
        try:
            lookup = await self.contacts.read(pending.participant_id)
        except ContactsUnavailable as exc:
            # Our own intake being away is not the message's fault: retry soon, for as long as
            # it takes, without using up the attempts a failing mail server would.
            return await self._retry(pending, str(exc), our_outage=True)
        decision = decide_delivery(lookup, self.today())
        if isinstance(decision, Cancel):
            return await self._close(pending, "cancelled", decision.reason)
        if isinstance(decision, Hold):
            return await self._hold(pending, decision.until)
        if isinstance(decision, AskPeer):
            return await self._ask_peer(pending, graph.action, thread)
        return await self._email(pending, graph.action, thread, decision)

    async def _email(self, pending: Pending, action: ActionNode, thread: Thread,
                     send: SendEmail) -> None:
        assert pending.message_id is not None
        body = self.wording.email_body(action, thread.points, send.name)
        try:
            await self.mailer.send(OutgoingEmail(send.address, SUBJECT, body, pending.message_id))
        except MailRejected as exc:
            return await self._close(pending, "failed", f"email refused: {exc}")
        except MailUnavailable as exc:
            return await self._retry(pending, f"mail server: {exc}")
        for attempt in range(5):  # it left: recording it is worth a short wait for the database
            try:
                async with self.pool.acquire() as conn:
                    await record_told(conn, self.store, pending, thread_json(thread),
                                      channel="email", actor_id="feedback",
                                      actor_role=ActorRole.SYSTEM)
                log.info("notification %s sent by email", pending.notification_id)
                self._count("email", "sent")
                return
            except TRANSIENT_DB_ERRORS:
                await asyncio.sleep(0.2 * 2**attempt)
        log.error("notification %s sent but not recorded; left 'sending' for the lease",
                  pending.notification_id)

    async def _ask_peer(self, pending: Pending, action: ActionNode, thread: Thread) -> None:
        brief = self.wording.peer_brief(action, thread.points)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO peer_tasks (task_id, notification_id, participant_id, action_id,
                       brief, status) VALUES (gen_random_uuid(), $1, $2, $3, $4, 'open')
                   ON CONFLICT (notification_id) DO UPDATE SET status = 'open', brief = $4,
                       outcome = NULL, created_at = now(), closed_at = NULL
                    WHERE peer_tasks.status = 'cancelled'""",
                pending.notification_id, pending.participant_id, pending.action_id, brief)
            await self._set(conn, pending.notification_id, "with_peer", None,
                            channel="peer_in_person", chain=thread_json(thread))
        log.info("notification %s handed to a peer worker", pending.notification_id)
        self._count("peer_in_person", "handed_to_peer")

    async def _hold(self, pending: Pending, until: date) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                """UPDATE notifications SET status = 'planned', due_on = $2, sending_since = NULL,
                          attempts = greatest(attempts - 1, 0), updated_at = now()
                    WHERE notification_id = $1""", pending.notification_id, until)
        self._count(pending.channel, "held")

    async def _retry(self, pending: Pending, why: str, *, our_outage: bool = False) -> None:
        if not our_outage and pending.attempts >= self.max_attempts:
            return await self._close(pending, "failed", why)
        delay_s = (OUR_OUTAGE_RETRY_S if our_outage
                   else min(30.0 * 2 ** (pending.attempts - 1), 6 * 3600.0))
        log.warning("notification %s deferred %.0fs: %s", pending.notification_id, delay_s, why)
        async with self.pool.acquire() as conn:
            await conn.execute(
                """UPDATE notifications SET status = 'planned', sending_since = NULL, reason = $2,
                          next_attempt_at = now() + make_interval(secs => $3), updated_at = now(),
                          attempts = CASE WHEN $4 THEN greatest(attempts - 1, 0) ELSE attempts END
                    WHERE notification_id = $1""", pending.notification_id, why, delay_s,
                our_outage)
        self._count(pending.channel, "deferred")

    async def _close(self, pending: Pending, status: str, reason: str) -> None:
        async with self.pool.acquire() as conn:
            await self._set(conn, pending.notification_id, status, reason)
        log.info("notification %s %s: %s", pending.notification_id, status, reason)
        self._count(pending.channel, status)

    @staticmethod
    async def _set(conn: asyncpg.Connection, notification_id: UUID, status: str,
                   reason: str | None, *, channel: str | None = None,
                   chain: dict[str, list[str]] | None = None) -> None:
        await conn.execute(
            """UPDATE notifications SET status = $2, reason = $3, sending_since = NULL,
                      channel = coalesce($4, channel), chain = coalesce($5, chain),
                      updated_at = now() WHERE notification_id = $1""",
            notification_id, status, reason, channel, chain)
