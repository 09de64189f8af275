"""Realistic, valid histories built through the contracts (`new_event` + `sequenced`), for tests,
demos and as the template of the benchmark's generator.

Every source numbers and chains its own events as its event store would; causation ids are the
ones the services write (a conversation rests on its participant, an insight on the
ConversationLogged events it cites, a priority on InsightDrafted events, an action on
PriorityAgreed events, a notification on the ActionTaken event and the person's conversations).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from contracts import (
    ActionTaken,
    ActionTakenEvent,
    ActorRole,
    AgreementRule,
    Chain,
    Consent,
    ConsentChanged,
    ConsentChangedEvent,
    ConversationLogged,
    ConversationLoggedEvent,
    EquityProfile,
    InsightDrafted,
    InsightDraftedEvent,
    ParticipantErased,
    ParticipantErasedEvent,
    ParticipantNotified,
    ParticipantNotifiedEvent,
    PriorityAgreed,
    PriorityAgreedEvent,
    RecontactConsent,
    Sealed,
    Tally,
    body_digest,
    chain_hash,
    new_event,
)
from contracts.chain import GENESIS_HASH
from contracts.envelope import Envelope
from contracts.topics import TOPIC_BY_TYPE

Event = Envelope[Any]
CATEGORIES = ("cultural_factors", "community_support", "clinical_and_social_help",
              "continuity_of_care")
PLACES = ("Tower Hamlets", "Hackney", "Newham")
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class HistoryBuilder:
    """Appends events as each source's event store would: gapless sequence, chained hash."""

    def __init__(self, seed: int = 1, start: datetime = START, source_prefix: str = "") -> None:
        self.rng = random.Random(seed)
        self.clock = start
        self.prefix = source_prefix
        self.events: list[Event] = []
        self._heads: dict[str, tuple[int, str]] = {}

    def uuid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def participant_id(self) -> str:
        return "p_" + "".join(self.rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(12))

    def emit(self, cls: type[Event], data: Any, source: str, actor: str, role: ActorRole, *,
             version: int = 1, causes: Sequence[str] = (), step: timedelta = timedelta(hours=5),
             subject: str | None = None) -> Event:
        self.clock += step
        source = self.prefix + source
        draft = new_event(cls, data=data, source=source, actorid=actor, actorrole=role,
                          correlationid=str(self.uuid()), subjectversion=version, subject=subject,
                          causationids=causes, time=self.clock, event_id=self.uuid())
        draft = draft.model_copy(update={"recordedtime": self.clock + timedelta(seconds=30)})
        sequence, prevhash = self._heads.get(source, (0, GENESIS_HASH))
        event = draft.sequenced(sequence + 1, prevhash,
                                chain_hash(prevhash, sequence + 1, body_digest(draft)))
        self._heads[source] = (event.sequence, event.hash)
        self.events.append(event)
        return event

    def conversation(self, participant: str, *, equity: EquityProfile | None, place: str,
                     categories: Sequence[str], recontact: bool = True, returning: bool = False,
                     version: int = 1) -> Event:
        consent = Consent(to_store=True, to_quote=True, to_recontact=recontact,
                          channel=self.rng.choice(("email", "peer_in_person")) if recontact
                          else "none")
        sealed = Sealed(key_id=f"k_{participant}_1", alg="AES-256-GCM", nonce="bXlub25jZTEyMzQ1",
                        ciphertext="8fLq0cJ1Zx3m0rW4b1dQm9mCk2s7Yw")
        data = ConversationLogged(
            conversation_id=self.uuid(), participant_id=participant,
            participant_status="returning" if returning else "new",
            listener_id=f"listener_{self.rng.randint(1, 4)}", held_on=self.clock.date(),
            setting="community café", place=place, categories=tuple(categories),
            categories_version=1, summary="The café group helps between appointments.",
            quotes=(sealed,), support_shared=("talking therapies",), consent=consent,
            equity=equity)
        return self.emit(ConversationLoggedEvent, data, "intake", data.listener_id,
                         ActorRole.COMMUNITY_LISTENER, causes=[participant], step=timedelta(hours=3))

    def insight(self, conversations: Sequence[Event], category: str, *,
                insight_id: UUID | None = None, revision: int = 1) -> Event:
        data = InsightDrafted(insight_id=insight_id or self.uuid(), revision=revision,
                              statement="Community groups feel easier to approach than surgeries.",
                              category=category,
                              conversation_ids=tuple(c.data.conversation_id for c in conversations))
        return self.emit(InsightDraftedEvent, data, "insight", "partner_a1",
                         ActorRole.LIVED_EXPERIENCE_PARTNER, version=revision,
                         causes=[str(c.id) for c in conversations], step=timedelta(days=2))

    def priority(self, insights: Sequence[Event]) -> Event:
        rule = AgreementRule(quorum=3, majority_numerator=2, majority_denominator=3)
        data = PriorityAgreed(priority_id=self.uuid(), session_id=self.uuid(),
                              statement="Offer support through trusted community groups.",
                              insight_ids=tuple(i.data.insight_id for i in insights),
                              agreed_by=("partner_a1", "partner_b2", "partner_c3"),
                              tally=Tally(support=3, object=1, abstain=0), rule=rule)
        return self.emit(PriorityAgreedEvent, data, "priority", "partner_a1",
                         ActorRole.LIVED_EXPERIENCE_PARTNER,
                         causes=[str(i.id) for i in insights], step=timedelta(days=6))

    def action(self, priorities: Sequence[Event], *, status: str = "planned",
               action_id: UUID | None = None, version: int = 1, place: str = "Hackney") -> Event:
        data = ActionTaken.model_validate({
            "action_id": action_id or self.uuid(),
            "priority_ids": [p.data.priority_id for p in priorities],
            "description": "Weekly drop-in with a mental health worker at the café.",
            "service": "community mental health team", "place": place,
            "framework": "Community Mental Health Framework",
            "framework_area": "Access and engagement", "status": status})
        return self.emit(ActionTakenEvent, data, "priority", "lead_3Rt9", ActorRole.SERVICE_LEAD,
                         version=version, causes=[str(p.id) for p in priorities],
                         step=timedelta(days=9))

    def notify(self, participant: str, action: Event, priorities: Sequence[Event],
               insights: Sequence[Event], conversations: Sequence[Event]) -> Event:
        chain = Chain(priority_ids=tuple(p.data.priority_id for p in priorities),
                      insight_ids=tuple(i.data.insight_id for i in insights),
                      conversation_ids=tuple(c.data.conversation_id for c in conversations))
        data = ParticipantNotified(
            notification_id=self.uuid(), participant_id=participant,
            action_id=action.data.action_id, channel="email", chain=chain,
            points_answered=tuple(sorted({k for c in conversations for k in c.data.categories})))
        return self.emit(ParticipantNotifiedEvent, data, "feedback", "feedback", ActorRole.SYSTEM,
                         causes=[str(action.id), *(str(c.id) for c in conversations)],
                         step=timedelta(days=4))

    def erase(self, participant: str, version: int) -> Event:
        data = ParticipantErased(participant_id=participant, erased_on=self.clock.date())
        return self.emit(ParticipantErasedEvent, data, "intake", participant,
                         ActorRole.PARTICIPANT, version=version, step=timedelta(days=1))

    def change_consent(self, participant: str, version: int) -> Event:
        consent = RecontactConsent(to_quote=False, to_recontact=False, channel="none")
        data = ConsentChanged(participant_id=participant, consent=consent)
        return self.emit(ConsentChangedEvent, data, "intake", participant,
                         ActorRole.PARTICIPANT, version=version, step=timedelta(hours=1))


def deliver(events: Sequence[Event], *, partitions: int = 3, seed: int = 0) -> list[Event]:
    """The order a reader of every topic might see: each (topic, partition) keeps its order
    (key = subject), but partitions interleave at random."""
    queues: dict[tuple[str, int], list[Event]] = {}
    for event in events:
        slot = (TOPIC_BY_TYPE[event.type], zlib.crc32(event.subject.encode()) % partitions)
        queues.setdefault(slot, []).append(event)
    rng = random.Random(seed)
    lanes = [list(reversed(q)) for q in queues.values()]
    order: list[Event] = []
    while lanes:
        lane = rng.choice(lanes)
        order.append(lane.pop())
        if not lane:
            lanes.remove(lane)
    return order
