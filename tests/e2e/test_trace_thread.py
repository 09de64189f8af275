"""One conversation's journey is one trace: from intake's `POST /conversations` to the publish of
`ParticipantNotified`, through the four services, each with its own tracer provider.

The four services run in-process over ASGI (lifespans included) on the session's real broker
and PostgreSQL; an in-memory exporter sees every service's spans. Downstream commands (a partner
drafting an insight, a session agreeing a priority, a lead recording an action) are HTTP
requests with traces of their own: the events they append continue the trace of the event they
rest on (eventcore/lineage.py), and the request's span links to it.

`ThreadServices` and `drive_thread` are shared with tests/integration/test_metrics_thread.py.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts import ActorRole, parse_event
from contracts.topics import ACTIONS, CONVERSATIONS, INSIGHTS, NOTIFICATIONS, PRIORITIES
from eventcore import telemetry
from eventcore.embedded import StackEndpoints
from eventcore.tokens import mint_token
from services.feedback.adapters.contacts import HttpContactReader
from tests.conftest import TEST_JWT_SECRET
from tests.integration.feedback_fixtures import (
    Clock,
    Mailbox,
    RunningFeedback,
    read_topic,
    running_feedback,
    smtp_server,
)
from tests.integration.insight_fixtures import RunningInsight, running_insight
from tests.integration.intake_fixtures import RunningIntake, running_intake
from tests.integration.priority_fixtures import RunningPriority, running_priority

pytestmark = pytest.mark.integration

SERVICES = ("intake", "insight", "priority", "feedback")


@dataclass
class ThreadServices:
    intake: RunningIntake
    insight: RunningInsight
    priority: RunningPriority
    feedback: RunningFeedback
    mailbox: Mailbox
    spans: InMemorySpanExporter

    def client(self, service: str) -> httpx.AsyncClient:
        running: Any = getattr(self, service)
        client: httpx.AsyncClient = running.client
        return client


@asynccontextmanager
async def thread_services(endpoints: StackEndpoints) -> AsyncIterator[ThreadServices]:
    """The four services in-process, every span also exported to memory."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    telemetry.EXTRA_SPAN_PROCESSORS.append(processor)  # before any app (provider) is built
    token = mint_token(TEST_JWT_SECRET, ActorRole.SYSTEM, "feedback", ttl_s=3600)
    try:
        async with AsyncExitStack() as stack:
            mailbox, smtp_port = await stack.enter_async_context(smtp_server())
            intake = await stack.enter_async_context(running_intake(endpoints))
            insight = await stack.enter_async_context(running_insight(endpoints))
            priority = await stack.enter_async_context(running_priority(endpoints))
            contacts = HttpContactReader("http://intake", token,
                                         transport=httpx.ASGITransport(app=intake.app))
            stack.push_async_callback(contacts.aclose)
            feedback = await stack.enter_async_context(running_feedback(
                endpoints, contacts=contacts, clock=Clock(), smtp_port=smtp_port))
            yield ThreadServices(intake, insight, priority, feedback, mailbox, exporter)
    finally:
        telemetry.EXTRA_SPAN_PROCESSORS.remove(processor)


@dataclass
class Thread:
    """What one journey produced: the HTTP answers and the person who was told."""

    email: str
    conversation: dict[str, Any]
    insight: dict[str, Any]
    decision: dict[str, Any]
    action: dict[str, Any]
    notification: dict[str, Any] = field(default_factory=dict)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 45) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (found := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return found


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any],
               status: int = 201) -> dict[str, Any]:
    answer = await client.post(path, json=body)
    assert answer.status_code == status, f"{path}: {answer.status_code} {answer.text}"
    found: dict[str, Any] = answer.json()
    return found


async def drive_thread(s: ThreadServices) -> Thread:
    """A voice logged → an insight → an agreed priority → an action → the person told by email."""
    tag = secrets.token_hex(4)
    email = f"amina.{tag}@example.org"
    conversation = await post(s.intake.client, "/conversations", {
        "listener_id": "listener-1", "held_on": "2026-01-10", "setting": "community café",
        "place": f"Tower Hamlets {tag}", "categories": ["community_support"],
        "summary": "Finds it hard to talk about low mood at home; the café group helps.",
        "participant": {"contact": {"name": f"Amina Testperson{tag}", "email": email}},
        "consent": {"to_store": True, "to_quote": False, "to_recontact": True,
                    "channel": "email"}})

    async def seen_by_insight() -> bool:
        return (await s.insight.client.get(f"/conversations/{conversation['id']}")).status_code \
            == 200
    await eventually(seen_by_insight, "the conversation in insight")
    insight = await post(s.insight.client, "/insights", {
        "partner_id": "partner_a1", "category": "community_support",
        "statement": "Community groups feel easier to approach than clinics.",
        "conversation_ids": [conversation["id"]]})

    async def seen_by_priority() -> bool:
        listed = (await s.priority.client.get("/insights", params={"limit": 500})).json()
        return insight["id"] in {i["insight_id"] for i in listed}
    await eventually(seen_by_priority, "the insight in priority")
    session = await post(s.priority.client, "/sessions", {
        "opened_by": "partner_a1", "insight_ids": [insight["id"]],
        "statement": "Offer mental health support through trusted community groups."})
    for partner in ("partner_a1", "partner_b2", "partner_c3"):
        await post(s.priority.client, f"/sessions/{session['session_id']}/responses",
                   {"partner_id": partner, "response": "support"}, status=200)
    decision = await post(s.priority.client, f"/sessions/{session['session_id']}/decision",
                          {"decided_by": "partner_a1"}, status=200)
    assert decision["outcome"] == "agreed", decision
    action = await post(s.priority.client, "/actions", {
        "recorded_by": "lead_1", "priority_ids": [decision["priority_id"]],
        "description": "A weekly NHS Talking Therapies drop-in at the café.",
        "service": "community mental health team", "place": "Tower Hamlets",
        "framework": "Community Mental Health Framework",
        "framework_area": "Access and engagement", "status": "in_progress"})
    thread = Thread(email, conversation, insight, decision, action)

    async def told() -> dict[str, Any] | None:
        rows = (await s.feedback.client.get("/notifications", params={
            "participant_id": conversation["participant_id"]})).json()
        return next((r for r in rows if r["status"] == "sent"), None)
    thread.notification = await eventually(told, "the notification sent")
    assert s.mailbox.to(email), "the email left"
    return thread


def trace_id_of(traceparent: str | None) -> int:
    assert traceparent is not None
    return int(traceparent.split("-")[1], 16)


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes.get("service.name"))


@pytest.fixture(scope="module")
async def services(endpoints: StackEndpoints) -> AsyncIterator[ThreadServices]:
    async with thread_services(endpoints) as running:
        yield running


async def test_one_conversation_journey_is_one_trace_across_the_four_services(
    services: ThreadServices, endpoints: StackEndpoints,
) -> None:
    thread = await drive_thread(services)
    notification_id = thread.notification["notification_id"]
    raw = await read_topic(endpoints, NOTIFICATIONS, {notification_id})
    told = parse_event(raw[notification_id])
    assert told.type == "ParticipantNotified"
    journey = trace_id_of(told.traceparent)

    # Every event of the thread carries the journey's trace, not its own request's.
    published = {
        CONVERSATIONS: thread.conversation["id"], INSIGHTS: thread.insight["id"],
        PRIORITIES: thread.decision["priority_id"], ACTIONS: thread.action["action_id"]}
    for topic, subject in published.items():
        event = parse_event((await read_topic(endpoints, topic, {subject}))[subject])
        assert trace_id_of(event.traceparent) == journey, f"{event.type} left the journey"

    def in_journey() -> list[ReadableSpan]:
        return [s for s in services.spans.get_finished_spans() if s.context.trace_id == journey]

    async def notified_publish_seen() -> bool:
        return any(s.name == f"{NOTIFICATIONS} publish" for s in in_journey())
    await eventually(notified_publish_seen, "the ParticipantNotified publish span")
    spans = in_journey()
    by_service: dict[str, set[str]] = {}
    for span in spans:
        by_service.setdefault(service_of(span), set()).add(span.name)

    # The root: intake's HTTP request span, the one span without a parent.
    [root] = [s for s in spans if s.parent is None]
    assert root.name == "POST /conversations" and service_of(root) == "golden-thread-intake"
    assert {f"golden-thread-{name}" for name in SERVICES} <= set(by_service), by_service.keys()
    # Each hop is there: the relay's publish and the consumer's processing, service by service.
    assert f"{CONVERSATIONS} publish" in by_service["golden-thread-intake"]
    assert f"{INSIGHTS} publish" in by_service["golden-thread-insight"]
    assert {f"{PRIORITIES} publish", f"{ACTIONS} publish"} <= by_service["golden-thread-priority"]
    assert f"{NOTIFICATIONS} publish" in by_service["golden-thread-feedback"]
    for service, consumed in (("insight", CONVERSATIONS), ("priority", INSIGHTS),
                              ("feedback", ACTIONS)):
        assert any(name.startswith(consumed) and "publish" not in name
                   for name in by_service[f"golden-thread-{service}"]), (service, by_service)
    # Every span of the journey hangs from the root: no orphan parents inside the trace.
    ids = {s.context.span_id for s in spans}
    orphans = [s.name for s in spans if s.parent is not None and s.parent.span_id not in ids]
    assert not orphans, orphans


async def test_a_downstream_request_keeps_its_own_trace_and_links_to_the_journey(
    services: ThreadServices, endpoints: StackEndpoints,
) -> None:
    thread = await drive_thread(services)
    subject = thread.insight["id"]
    drafted = parse_event((await read_topic(endpoints, INSIGHTS, {subject}))[subject])
    journey = trace_id_of(drafted.traceparent)

    async def request_span() -> ReadableSpan | None:
        return next((s for s in services.spans.get_finished_spans()
                     if s.name == "POST /insights" and s.parent is None
                     and any(link.context.trace_id == journey for link in s.links)), None)
    span = await eventually(request_span, "the POST /insights span linking to the journey")
    assert span.context.trace_id != journey  # the partner's request is its own trace...
    assert service_of(span) == "golden-thread-insight"  # ...linked to the voice it rests on
