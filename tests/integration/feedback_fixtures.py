"""Shared by the feedback integration tests (no tests here): upstream event builders with a
correct hash chain, a real SMTP server on loopback, and feedback served in-process."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, TypeVar
from uuid import UUID, uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiosmtpd.controller import Controller

from contracts import (
    GENESIS_HASH,
    ActionTaken,
    ActionTakenEvent,
    ActorRole,
    AgreementRule,
    Consent,
    ConsentChanged,
    ConsentChangedEvent,
    ConversationLogged,
    ConversationLoggedEvent,
    Envelope,
    EventDraft,
    InsightDrafted,
    InsightDraftedEvent,
    ParticipantErased,
    ParticipantErasedEvent,
    PriorityAgreed,
    PriorityAgreedEvent,
    RecontactConsent,
    Tally,
    body_digest,
    chain_hash,
    new_event,
)
from contracts.topics import TOPIC_BY_TYPE
from eventcore.embedded import StackEndpoints
from eventcore.messaging import envelope_message, send_all
from services.feedback.adapters.contacts import ContactReader
from services.feedback.bootstrap import build_app
from services.feedback.config import FeedbackSettings
from services.feedback.scheduler import Scheduler
from tests.conftest import core_values, create_database
from tests.integration.in_process import RunningApp, serve

T = TypeVar("T")


#: The trust system the tests let publish its own actions.
TRUST_SYSTEM = "trust.east-london"

#: The service that owns each upstream event type (feedback dead-letters other sources).
OWNER = {"ConversationLogged": "intake", "ConsentChanged": "intake", "ParticipantErased": "intake",
         "InsightDrafted": "insight", "PriorityAgreed": "priority", "ActionTaken": "priority"}


class Upstream:
    """Upstream events a test publishes, each source with its gapless sequence and hash chain.

    Built as a service ("intake", "insight", "priority"), it publishes each type as its owning
    service; built as a trust system (any other name), it publishes as that system."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._chains: dict[str, tuple[int, str]] = {}

    def source_of(self, event_type: str) -> str:
        return OWNER[event_type] if self.source in set(OWNER.values()) else self.source

    def seal(self, draft: EventDraft[Any]) -> Envelope[Any]:
        sequence, head = self._chains.get(draft.source, (0, GENESIS_HASH))
        sequence += 1
        digest = chain_hash(head, sequence, body_digest(draft))
        event = draft.sequenced(sequence, head, digest)
        self._chains[draft.source] = (sequence, digest)
        return event

    def conversation(self, participant_id: str, *categories: str, channel: str = "email",
                     earliest: date | None = None) -> Envelope[Any]:
        """A conversation as intake would log it (for tests that run without intake)."""
        data = ConversationLogged(
            conversation_id=uuid4(), participant_id=participant_id, participant_status="new",
            listener_id="listener-1", held_on=date(2026, 1, 5), setting="community café",
            place="Tower Hamlets", categories=categories or ("community_support",),
            categories_version=1, summary="Finds the café group helps.",
            consent=Consent(to_store=True, to_quote=False, **_consent(channel, earliest)))
        return self.seal(new_event(ConversationLoggedEvent, data=data, source=self.source_of("ConversationLogged"),
                                   subjectversion=1, **_actor("listener-1")))

    def consent_changed(self, participant_id: str, version: int, channel: str,
                        earliest: date | None = None) -> Envelope[Any]:
        data = ConsentChanged(participant_id=participant_id,
                              consent=RecontactConsent(to_quote=False,
                                                       **_consent(channel, earliest)))
        return self.seal(new_event(ConsentChangedEvent, data=data, source=self.source_of("ConsentChanged"),
                                   subjectversion=version, **_actor("listener-1")))

    def erased(self, participant_id: str, version: int) -> Envelope[Any]:
        data = ParticipantErased(participant_id=participant_id, erased_on=date(2026, 2, 1))
        return self.seal(new_event(ParticipantErasedEvent, data=data, source=self.source_of("ParticipantErased"),
                                   subjectversion=version, **_actor("listener-1")))

    def insight(self, conversation_ids: list[UUID], category: str = "community_support",
                *, insight_id: UUID | None = None, revision: int = 1) -> Envelope[Any]:
        data = InsightDrafted(insight_id=insight_id or uuid4(), revision=revision,
                              statement="Community groups feel easier to approach.",
                              category=category, conversation_ids=tuple(conversation_ids))
        return self.seal(new_event(InsightDraftedEvent, data=data, source=self.source_of("InsightDrafted"),
                                   subjectversion=revision, **_actor("partner-1")))

    def priority(self, insight_ids: list[UUID]) -> Envelope[Any]:
        data = PriorityAgreed(
            priority_id=uuid4(), session_id=uuid4(), insight_ids=tuple(insight_ids),
            statement="Offer support through trusted community groups.",
            agreed_by=("partner-1", "partner-2", "partner-3"),
            tally=Tally(support=3, object=0, abstain=0),
            rule=AgreementRule(quorum=3, majority_numerator=2, majority_denominator=3))
        return self.seal(new_event(PriorityAgreedEvent, data=data, source=self.source_of("PriorityAgreed"),
                                   subjectversion=1, **_actor("partner-1")))

    def action(self, priority_ids: list[UUID], *, action_id: UUID | None = None,
               status: str = "in_progress", version: int = 1,
               description: str = "The CMHT will run a weekly IAPT drop-in at the café",
               ) -> Envelope[Any]:
        data = ActionTaken(action_id=action_id or uuid4(), priority_ids=tuple(priority_ids),
                           description=description, service="CMHT", place="Tower Hamlets",
                           framework="CMHF", framework_area="Access and engagement",
                           status=status)
        return self.seal(new_event(ActionTakenEvent, data=data, source=self.source_of("ActionTaken"),
                                   subjectversion=version, **_actor("trust-system-1",
                                                                    ActorRole.TRUST_SYSTEM)))


def _consent(channel: str, earliest: date | None) -> dict[str, Any]:
    return {"to_recontact": channel != "none", "channel": channel, "earliest_contact_on": earliest}


def _actor(actor: str, role: ActorRole = ActorRole.LIVED_EXPERIENCE_PARTNER) -> dict[str, Any]:
    return {"actorid": actor, "actorrole": role, "correlationid": str(uuid4()),
            "traceparent": f"00-{uuid4().hex}-{uuid4().hex[:16]}-01"}


async def publish(producer: AIOKafkaProducer, *events: Envelope[Any]) -> None:
    await send_all(producer, [
        envelope_message(TOPIC_BY_TYPE[e.type], e.model_dump(mode="json")) for e in events])


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout_s: float = 30.0,
                     what: str = "condition") -> T:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await check()
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Clock:
    """Today, as the feedback service sees it; tests move it forward."""

    today: date = field(default_factory=lambda: datetime.now(UTC).date())

    def __call__(self) -> date:
        return self.today


class Mailbox:
    """Every message a real SMTP server on loopback accepted."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for rcpts, m in self.received if address in rcpts]


@asynccontextmanager
async def smtp_server() -> AsyncIterator[tuple[Mailbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@dataclass
class RunningFeedback(RunningApp):
    settings: FeedbackSettings

    @property
    def scheduler(self) -> Scheduler:
        found: Scheduler = self.app.state.scheduler
        return found


@asynccontextmanager
async def running_feedback(endpoints: StackEndpoints, *, contacts: ContactReader, clock: Clock,
                           smtp_port: int, **overrides: object) -> AsyncIterator[RunningFeedback]:
    values = core_values(endpoints, await create_database(endpoints))
    values.update(feedback_smtp_host="127.0.0.1", feedback_smtp_port=smtp_port,
                  feedback_smtp_from="Golden Thread <feedback@golden-thread.test>",
                  feedback_scheduler_interval_s=0.1,
                  **{"feedback_trusted_action_sources": (TRUST_SYSTEM,), **overrides})
    settings = FeedbackSettings(**values)  # type: ignore[arg-type]
    app = build_app(settings, contacts=contacts, today=clock)
    async with serve(app, "feedback") as client:
        yield RunningFeedback(app, client, settings)


async def read_topic(endpoints: StackEndpoints, topic: str, subjects: set[str],
                     timeout_s: float = 20.0) -> dict[str, bytes]:
    """Raw messages on `topic` whose key is one of `subjects`, read from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    found: dict[str, bytes] = {}
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while set(found) < subjects and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    if r.key is not None and r.key.decode() in subjects:
                        found[r.key.decode()] = r.value
    finally:
        await consumer.stop()
    return found
