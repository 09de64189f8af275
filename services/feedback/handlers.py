"""Consumed upstream events: fold each into the graph, then plan or cancel notifications.

Ordering: events arrive in any order across topics and partitions, so nothing waits for
anything. Every event re-resolves the actions it can newly reach: an ActionTaken resolves
itself; a late PriorityAgreed, InsightDrafted or ConversationLogged re-resolves every action it
feeds; a consent change re-resolves that person's actions. Resolution walks only complete
paths, so a partial graph plans fewer people, never wrong ones, and the unique
(participant, action) constraint makes re-resolving harmless. All graph writers take one
transaction-scoped advisory lock, so two instances never resolve over each other's
uncommitted halves (feedback volumes are small; correctness beats parallelism here).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from eventcore.consumer import BatchHandler, DomainRejection, Handler
from services.feedback.adapters.graph import actions_fed_by
from services.feedback.facts import fact_of, record_all
from services.feedback.planning import consent_of, follow_consent, plan
from services.feedback.projections import UPSTREAM_TYPES, fold_all

_ABOUT_CONSENT = ("ConsentChanged", "ParticipantErased")
GRAPH_LOCK = int.from_bytes(hashlib.sha256(b"feedback.graph").digest()[:8], "big", signed=True)

_FEEDS = {
    "PriorityAgreed": ("priority", "priority_id"),
    "InsightDrafted": ("insight", "insight_id"),
    "ConversationLogged": ("conversation", "conversation_id"),
}


#: Who may publish what feedback acts on. A forged erasure would silence someone and a forged
#: chain could plan a letter to a real person, so anything else is dead-lettered.
OWNERS = {
    "ConversationLogged": ("intake",),
    "ParticipantErased": ("intake",),
    "ConsentChanged": ("intake",),
    "InsightDrafted": ("insight",),
    "PriorityAgreed": ("priority",),
    "ActionTaken": ("priority",),
}


@dataclass(frozen=True)
class Policies:
    notify_from: str
    trusted_action_sources: tuple[str, ...] = ()

    def handlers(self) -> dict[str, Handler]:
        return {name: self.when_upstream_event_arrives_resolve_who_to_tell
                for name in UPSTREAM_TYPES}

    def batch_handlers(self) -> dict[str, BatchHandler]:
        return {name: self.when_upstream_events_arrive_resolve_who_to_tell
                for name in UPSTREAM_TYPES}

    async def when_upstream_event_arrives_resolve_who_to_tell(
        self, conn: asyncpg.Connection, event: Any
    ) -> None:
        await self.when_upstream_events_arrive_resolve_who_to_tell(conn, [event])

    async def when_upstream_events_arrive_resolve_who_to_tell(
        self, conn: asyncpg.Connection, events: list[Any]
    ) -> None:
        """Fold every fact, then resolve once what they newly reach. Resolving after the last
        fold plans what resolving after each would have (plans are keyed by person and action
        and walk only complete paths; consent is followed to its latest state). The consumer
        calls it once per run of one type: a plan, and then its cancelling by a consent change
        or an erasure, stay on record as they would one message at a time
        (`test_a_batch_plans_exactly_what_one_message_at_a_time_plans`)."""
        for event in events:
            self._require_owner(event)
        # All graph writers take one lock. Every statement here finds rows by key, so sequential
        # scans are off for this transaction: on a table not analyzed yet (a new deployment
        # working through a backlog) the planner guessed that most rows match and read 39,000
        # links for 198 (docs/performance.md 45). And generic plans for the fold, should an
        # earlier call in this transaction (one per run of one type) have asked for custom ones.
        await conn.execute("SELECT pg_advisory_xact_lock($1), set_config('enable_seqscan', 'off',"
                           " true), set_config('plan_cache_mode', 'auto', true)", GRAPH_LOCK)
        facts = [fact_of(event) for event in events]
        # The people whose consent or erasure this batch may change, in order of arrival, and
        # what the graph held for them before it; those it names in a consent change or an
        # erasure are followed whatever it held.
        people = list(dict.fromkeys(f.data["participant_id"] for f in facts
                                    if "participant_id" in f.data))
        before = await consent_of(conn, people)
        named = {f.data["participant_id"] for f in facts if f.event_type in _ABOUT_CONSENT}
        await record_all(conn, facts)
        await fold_all(conn, facts)
        # From here on, plan each graph read for the arrays it is given (one id to a batch's
        # 500): cached generic plans, made while the tables were small, scanned whole tables
        # for a handful of ids (profiled: 1.3 ms against 0.04 ms per participant lookup, 15 ms
        # per notification lookup). Not before: the fold's row-by-row statements (consents of a
        # participant named twice in a run; all of them before finding 67) would be planned once
        # per row (0.65 s of planning per 70,000 events).
        await conn.execute("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
        actions: set[UUID] = set()
        fed: dict[str, list[UUID]] = {}
        for fact in facts:
            data = fact.data
            if fact.event_type == "ActionTaken":
                actions.add(UUID(data["action_id"]))
            elif fact.event_type in _FEEDS:
                kind, key = _FEEDS[fact.event_type]
                fed.setdefault(kind, []).append(UUID(data[key]))
        for kind, ids in fed.items():
            actions.update(await actions_fed_by(conn, kind, ids))
        await plan(conn, sorted(actions), self.notify_from)
        await follow_consent(conn, people, self.notify_from, before=before, named=named)

    def _require_owner(self, event: Any) -> None:
        allowed: tuple[str, ...] = OWNERS.get(event.type, ())
        if event.type == "ActionTaken":
            allowed = allowed + self.trusted_action_sources
        if event.source not in allowed:
            raise DomainRejection(f"source {event.source} may not publish {event.type} here; "
                                  f"trusted: {', '.join(allowed)}")
