"""Planning notifications from the graph, and keeping planned ones true to the latest consent.

Called inside the consumer's transaction, so a plan commits with the fact that caused it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg

from services.feedback.adapters.graph import actions_fed_by, load_action_graph
from services.feedback.domain.chain import recipients

log = logging.getLogger(__name__)

_NOTIFICATIONS = uuid5(NAMESPACE_URL, "urn:golden-thread:feedback:notification")
PENDING = ("planned", "with_peer")


def notification_id(participant_id: str, action_id: UUID) -> UUID:
    """The same (participant, action) always names the same notification, even on rebuild."""
    return uuid5(_NOTIFICATIONS, f"{participant_id}/{action_id}")


async def plan(conn: asyncpg.Connection, action_ids: Iterable[UUID], notify_from: str) -> int:
    """Plan one notification per newly reached (participant, action); returns how many."""
    planned = 0
    for action_id in action_ids:
        graph = await load_action_graph(conn, action_id)
        for person in recipients(graph, notify_from) if graph else ():
            fresh = await conn.fetchval(
                """INSERT INTO notifications (notification_id, participant_id, action_id, channel,
                       status, due_on, action_event_id, correlation_id, traceparent)
                   SELECT $1, $2, a.action_id, $3, 'planned', $4, a.event_id, a.correlation_id,
                          a.traceparent FROM graph_actions a WHERE a.action_id = $5
                   ON CONFLICT (participant_id, action_id) DO NOTHING RETURNING true""",
                notification_id(person.participant_id, action_id), person.participant_id,
                person.channel, person.due_on, action_id,
            )
            if fresh:
                planned += 1
                log.info("planned notification of %s about action %s",
                         person.participant_id, action_id)
    return planned


async def follow_consent(conn: asyncpg.Connection, participant_id: str, notify_from: str) -> None:
    """Make pending notifications of one participant follow their latest consent and erasure."""
    person = await conn.fetchrow(
        "SELECT to_recontact, channel, earliest_contact_on, erased FROM graph_participants"
        " WHERE participant_id = $1", participant_id,
    )
    if person is None:
        return
    if person["erased"]:
        await cancel_pending(conn, participant_id, "erased")
        return
    if not person["to_recontact"] or person["channel"] not in ("email", "peer_in_person"):
        await cancel_pending(conn, participant_id, "consent_withdrawn")
        return
    channel, due_on = person["channel"], person["earliest_contact_on"]
    # They asked to be told again: what was cancelled only because they had withdrawn comes back.
    await conn.execute(
        """UPDATE notifications SET status = 'planned', reason = NULL, attempts = 0,
                  next_attempt_at = now(), updated_at = now()
            WHERE participant_id = $1 AND status = 'cancelled' AND reason = 'consent_withdrawn'""",
        participant_id,
    )
    await conn.execute(
        """WITH moved AS (
               UPDATE notifications SET status = 'planned', updated_at = now()
                WHERE participant_id = $1 AND status = 'with_peer' AND channel <> $2
               RETURNING notification_id)
           UPDATE peer_tasks SET status = 'cancelled', outcome = 'channel_changed',
                  closed_at = now()
            WHERE status = 'open' AND notification_id IN (SELECT notification_id FROM moved)""",
        participant_id, channel,
    )
    await conn.execute(
        """UPDATE notifications SET channel = $2, due_on = $3, updated_at = now()
            WHERE participant_id = $1 AND status = 'planned'""",
        participant_id, channel, due_on,
    )
    await plan(conn, await actions_fed_by(conn, "participant", [participant_id]), notify_from)


async def cancel_pending(conn: asyncpg.Connection, participant_id: str, reason: str) -> int:
    """Cancel what has not been sent yet (a notification being sent right now is left alone:
    the sender re-checks with intake just before sending)."""
    cancelled = await conn.fetch(
        """UPDATE notifications SET status = 'cancelled', reason = $2, updated_at = now()
            WHERE participant_id = $1 AND status = ANY($3) RETURNING notification_id""",
        participant_id, reason, list(PENDING),
    )
    ids = [r["notification_id"] for r in cancelled]
    await conn.execute(
        "UPDATE peer_tasks SET status = 'cancelled', outcome = $2, closed_at = now()"
        " WHERE status = 'open' AND notification_id = ANY($1)",
        ids, reason,
    )
    for found in ids:
        log.info("cancelled notification %s: %s", found, reason)
    return len(ids)
