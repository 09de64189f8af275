"""Planning notifications from the graph, and keeping planned ones true to the latest consent.

Called inside the consumer's transaction, so a plan commits with the fact that caused it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg

from services.feedback.adapters.graph import actions_fed_by, load_action_graphs
from services.feedback.domain.chain import Recipient, recipients

log = logging.getLogger(__name__)

_NOTIFICATIONS = uuid5(NAMESPACE_URL, "urn:golden-thread:feedback:notification")
PENDING = ("planned", "with_peer")


def notification_id(participant_id: str, action_id: UUID) -> UUID:
    """The same (participant, action) always names the same notification, even on rebuild."""
    return uuid5(_NOTIFICATIONS, f"{participant_id}/{action_id}")


async def plan(conn: asyncpg.Connection, action_ids: Iterable[UUID], notify_from: str) -> int:
    """Plan one notification per newly reached (participant, action); returns how many.

    Every action's graph is read at once and every recipient planned in one statement."""
    ordered = list(action_ids)
    graphs = await load_action_graphs(conn, ordered) if ordered else {}
    planned: list[tuple[UUID, Recipient]] = [
        (action_id, person) for action_id in ordered if action_id in graphs
        for person in recipients(graphs[action_id], notify_from)]
    if not planned:
        return 0
    fresh = await conn.fetch(
        """INSERT INTO notifications (notification_id, participant_id, action_id, channel,
               status, due_on, action_event_id, correlation_id, traceparent)
           SELECT p.notification_id, p.participant_id, a.action_id, p.channel, 'planned',
                  p.due_on, a.event_id, a.correlation_id, a.traceparent
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::uuid[])
                  WITH ORDINALITY AS p(notification_id, participant_id, channel, due_on,
                                       action_id, n)
             JOIN graph_actions a ON a.action_id = p.action_id
            ORDER BY p.n
           ON CONFLICT (participant_id, action_id) DO NOTHING
           RETURNING participant_id, action_id""",
        [notification_id(p.participant_id, a) for a, p in planned],
        [p.participant_id for _, p in planned], [p.channel for _, p in planned],
        [p.due_on for _, p in planned], [a for a, _ in planned],
    )
    if fresh:
        # One line per batch (a line per notification was 3.7 % of feedback's samples with the
        # JSON log formatter); each one at DEBUG, which costs nothing when off.
        log.info("planned %d notifications about %d actions", len(fresh),
                 len({row["action_id"] for row in fresh}))
        if log.isEnabledFor(logging.DEBUG):
            for row in fresh:
                log.debug("planned notification of %s about action %s", row["participant_id"],
                          row["action_id"])
    return len(fresh)


_CONSENT_OF = ("SELECT participant_id, to_recontact, channel, earliest_contact_on, erased"
               " FROM graph_participants WHERE participant_id = ANY($1::text[])")

#: What the graph holds of a person's consent and erasure.
ConsentState = tuple[bool, str, date | None, bool]


def _state(row: asyncpg.Record) -> ConsentState:
    return (row["to_recontact"], row["channel"], row["earliest_contact_on"], row["erased"])


async def consent_of(conn: asyncpg.Connection, participant_ids: Sequence[str]
                     ) -> dict[str, ConsentState]:
    """What the graph holds now of these people's consent (people it does not know: absent)."""
    if not participant_ids:
        return {}
    return {r["participant_id"]: _state(r)
            for r in await conn.fetch(_CONSENT_OF, list(participant_ids))}


async def follow_consent(conn: asyncpg.Connection, participant_ids: Sequence[str],
                         notify_from: str, *, before: Mapping[str, ConsentState] | None = None,
                         named: Collection[str] = ()) -> None:
    """Make pending notifications of these participants follow their latest consent and
    erasure (a constant number of statements, however many people).

    With `before` (`consent_of` them before their new facts were folded), a person is followed
    only when there may be something to follow: `named` (a consent change or erasure about
    them), their consent or erasure in the graph changed, or the sender acted on intake's word
    rather than the graph's (a notification cancelled as withdrawn or handed to a peer, which
    consent in the graph may have to undo). Otherwise their pending notifications already
    follow what the graph holds, and a person the graph did not know has none (plans reach only
    people in the graph; what their new conversations feed is planned by the batch). A hold the
    sender set from intake's later earliest day stays (it asks intake again when it is due).
    Profiled: following every person of a batch was a dozen statements and the planning of
    every action they feed, per batch, though nobody's consent had changed (docs/performance.md
    45)."""
    if not participant_ids:
        return
    people = await conn.fetch(_CONSENT_OF, list(participant_ids))
    if before is not None:
        now = {p["participant_id"]: _state(p) for p in people}
        moved = {pid for pid, state in now.items()
                 if pid in named or (pid in before and before[pid] != state)}
        known = [pid for pid in now if pid in before and pid not in moved]
        if known:  # unchanged in the graph: followed only where the sender acted on intake
            moved |= {r["participant_id"] for r in await conn.fetch(
                "SELECT DISTINCT participant_id FROM notifications"
                " WHERE participant_id = ANY($1::text[]) AND (status = 'with_peer'"
                "       OR (status = 'cancelled' AND reason = 'consent_withdrawn'))", known)}
        people = [p for p in people if p["participant_id"] in moved]
    erased = [p["participant_id"] for p in people if p["erased"]]
    withdrawn = [p["participant_id"] for p in people if not p["erased"] and (
        not p["to_recontact"] or p["channel"] not in ("email", "peer_in_person"))]
    gone = set(erased) | set(withdrawn)
    willing = [p for p in people if p["participant_id"] not in gone]
    await cancel_pending(conn, erased, "erased")
    await cancel_pending(conn, withdrawn, "consent_withdrawn")
    if not willing:
        return
    ids = [p["participant_id"] for p in willing]
    channels = [p["channel"] for p in willing]
    # They asked to be told again: what was cancelled only because they had withdrawn comes back.
    await conn.execute(
        """UPDATE notifications SET status = 'planned', reason = NULL, attempts = 0,
                  next_attempt_at = now(), updated_at = now()
            WHERE participant_id = ANY($1::text[]) AND status = 'cancelled'
              AND reason = 'consent_withdrawn'""",
        ids,
    )
    await conn.execute(
        """WITH asked AS (SELECT * FROM unnest($1::text[], $2::text[]) AS a(pid, channel)),
           moved AS (
               UPDATE notifications n SET status = 'planned', updated_at = now()
                 FROM asked a
                WHERE n.participant_id = a.pid AND n.status = 'with_peer' AND n.channel <> a.channel
               RETURNING n.notification_id)
           UPDATE peer_tasks SET status = 'cancelled', outcome = 'channel_changed',
                  closed_at = now()
            WHERE status = 'open' AND notification_id IN (SELECT notification_id FROM moved)""",
        ids, channels,
    )
    await _follow_channel_and_date(conn, willing)
    await plan(conn, await actions_fed_by(conn, "participant", ids), notify_from)


async def _follow_channel_and_date(conn: asyncpg.Connection,
                                   willing: Sequence[asyncpg.Record]) -> None:
    """Planned notifications take the channel and earliest day their person now asks for.

    Read first, then only what differs is written, by primary key. (One UPDATE joined to the
    people's arrays was planned, on tables that grew since their statistics, as a nested loop
    over every planned notification re-reading the arrays each time: 140-210 ms per batch of
    500 people, most of feedback's database time; and it rewrote every row, changed or not.)
    """
    asked = {p["participant_id"]: (p["channel"], p["earliest_contact_on"]) for p in willing}
    planned = await conn.fetch(
        "SELECT notification_id, participant_id, channel, due_on FROM notifications"
        " WHERE participant_id = ANY($1::text[]) AND status = 'planned'", list(asked))
    moves: dict[tuple[str, date | None], list[UUID]] = {}
    for row in planned:
        wanted = asked[row["participant_id"]]
        if (row["channel"], row["due_on"]) != wanted:
            moves.setdefault(wanted, []).append(row["notification_id"])
    for (channel, due_on), ids in moves.items():
        await conn.execute(
            "UPDATE notifications SET channel = $2, due_on = $3, updated_at = now()"
            " WHERE notification_id = ANY($1::uuid[]) AND status = 'planned'",
            ids, channel, due_on)


async def cancel_pending(conn: asyncpg.Connection, participant_ids: Sequence[str], reason: str
                         ) -> int:
    """Cancel what has not been sent yet (a notification being sent right now is left alone:
    the sender re-checks with intake just before sending)."""
    if not participant_ids:
        return 0
    cancelled = await conn.fetch(
        """UPDATE notifications SET status = 'cancelled', reason = $2, updated_at = now()
            WHERE participant_id = ANY($1::text[]) AND status = ANY($3) RETURNING notification_id""",
        list(participant_ids), reason, list(PENDING),
    )
    ids = [r["notification_id"] for r in cancelled]
    if ids:
        await conn.execute(
            "UPDATE peer_tasks SET status = 'cancelled', outcome = $2, closed_at = now()"
            " WHERE status = 'open' AND notification_id = ANY($1)",
            ids, reason,
        )
    for found in ids:
        log.info("cancelled notification %s: %s", found, reason)
    return len(ids)
