"""What ops watch, read from each service's /metrics after real traffic through the whole thread:
events appended, published and consumed per type; consumer lag per partition back to zero when
idle; the outbox backlog drained and its oldest age; dead letters after a malformed message;
HTTP latency; and feedback's notifications by channel and outcome.

The four services run in-process on the session's broker and PostgreSQL (the same set-up as
tests/e2e/test_trace_thread.py); every service has its own registry, so each /metrics is its own.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka import AIOKafkaProducer

from contracts.topics import CONVERSATIONS, INSIGHTS, PARTICIPANTS
from eventcore.embedded import StackEndpoints
from tests.e2e.test_trace_thread import Thread, ThreadServices, drive_thread, thread_services

pytestmark = pytest.mark.integration

Sample = tuple[str, dict[str, str], float]
_LINE = re.compile(r'^(?P<name>[a-zA-Z_:][\w:]*)(\{(?P<labels>.*)\})? (?P<value>\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

#: What each service appends, and what it consumes (and from which topics).
APPENDS = {"intake": ["ConversationLogged"], "insight": ["InsightDrafted"],
           "priority": ["PriorityAgreed", "ActionTaken"], "feedback": ["ParticipantNotified"]}
CONSUMES = {"insight": ["ConversationLogged"], "priority": ["InsightDrafted"],
            "feedback": ["ConversationLogged", "InsightDrafted", "PriorityAgreed", "ActionTaken"]}


def samples(text: str) -> list[Sample]:
    found = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and not line.startswith("#"):
            labels = dict(_LABEL.findall(match["labels"] or ""))
            found.append((match["name"], labels, float(match["value"])))
    return found


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for n, ls, v in samples(text) if n == name and labels.items() <= ls.items())


def series(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    return [(ls, v) for n, ls, v in samples(text) if n == name and labels.items() <= ls.items()]


async def metrics(s: ThreadServices, service: str) -> str:
    answer = await s.client(service).get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


async def eventually(s: ThreadServices, service: str, ok: Callable[[str], bool], what: str,
                     timeout_s: float = 30) -> str:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        text = await metrics(s, service)
        if ok(text):
            return text
        if asyncio.get_running_loop().time() > deadline:
            shown = "\n".join(line for line in text.splitlines() if line.startswith("gt_"))
            raise AssertionError(f"{service}: never saw {what}:\n{shown[:6000]}")
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def traffic(endpoints: StackEndpoints) -> AsyncIterator[tuple[ThreadServices, Thread]]:
    async with thread_services(endpoints) as running:
        yield running, await drive_thread(running)


async def test_events_are_counted_appended_published_and_consumed_per_type(
    traffic: tuple[ThreadServices, Thread],
) -> None:
    s, _ = traffic
    for service, types in APPENDS.items():
        for kind in types:
            text = await eventually(
                s, service, lambda t, k=kind: total(t, "gt_events_published_total", type=k) >= 1,
                f"{kind} published")
            assert total(text, "gt_events_appended_total", type=kind) >= 1, (service, kind)
            assert total(text, "gt_events_published_total", type=kind) <= total(
                text, "gt_events_appended_total", type=kind) or service == "intake"
    for service, types in CONSUMES.items():
        for kind in types:
            await eventually(
                s, service, lambda t, k=kind, c=service: total(
                    t, "gt_events_consumed_total", consumer=c, type=k, outcome="applied") >= 1,
                f"{kind} consumed")


async def test_the_outbox_drains_to_zero_and_its_oldest_age_with_it(
    traffic: tuple[ThreadServices, Thread],
) -> None:
    s, _ = traffic
    for service in APPENDS:
        text = await eventually(
            s, service, lambda t, src=service: [v for _, v in series(
                t, "gt_outbox_backlog", source=src)] == [0.0], "the outbox backlog at 0")
        [(_, age)] = [(ls, v) for n, ls, v in samples(text)
                      if n.startswith("gt_outbox_oldest_age") and ls.get("source") == service]
        assert age == 0.0, f"{service}: nothing unpublished, so no oldest age"


async def test_consumer_lag_is_reported_per_partition_and_returns_to_zero_when_idle(
    traffic: tuple[ThreadServices, Thread],
) -> None:
    s, _ = traffic
    topics = {"insight": {CONVERSATIONS, PARTICIPANTS}, "priority": {INSIGHTS}}

    def idle(t: str, service: str) -> bool:
        lag = series(t, "gt_consumer_lag", group=service)
        return bool(lag) and all(v == 0 for _, v in lag)

    for service in CONSUMES:
        text = await eventually(s, service, lambda t, sv=service: idle(t, sv), "lag back to 0")
        lag = series(text, "gt_consumer_lag", group=service)
        by_topic: dict[str, set[int]] = {}
        for labels, _ in lag:
            by_topic.setdefault(labels["topic"], set()).add(int(labels["partition"]))
        assert topics.get(service, set()) <= set(by_topic), (service, by_topic)
        for topic, partitions in by_topic.items():
            assert partitions == set(range(len(partitions))), (service, topic, partitions)


async def test_a_malformed_message_is_dead_lettered_and_counted(
    traffic: tuple[ThreadServices, Thread], endpoints: StackEndpoints,
) -> None:
    s, _ = traffic
    before = {c: total(await metrics(s, c), "gt_dead_letters_total", consumer=c)
              for c in ("insight", "priority", "feedback")}
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                enable_idempotence=endpoints.kafka_enable_idempotence)
    await producer.start()
    try:
        for topic in (CONVERSATIONS, INSIGHTS):
            await producer.send_and_wait(topic, b"{ this is not an event",
                                         key=secrets.token_hex(8).encode())
    finally:
        await producer.stop()
    for consumer in ("insight", "priority", "feedback"):
        text = await eventually(
            s, consumer, lambda t, c=consumer: total(t, "gt_dead_letters_total", consumer=c)
            >= before[c] + 1, "the dead letter counted")
        assert total(text, "gt_events_consumed_total", consumer=consumer, type="unknown",
                     outcome="dead_lettered") >= 1
    # Processing went on: the lag is back to zero after the poison message.
    for consumer in ("insight", "priority"):
        await eventually(s, consumer, lambda t, c=consumer: all(
            v == 0 for _, v in series(t, "gt_consumer_lag", group=c)), "lag back to 0")


async def test_http_latency_is_measured(traffic: tuple[ThreadServices, Thread]) -> None:
    s, _ = traffic
    for service in ("intake", "insight", "priority"):
        text = await metrics(s, service)
        counts = [(n, ls, v) for n, ls, v in samples(text)
                  if re.match(r"http_server_(request_)?duration.*_count$", n) and v > 0]
        assert counts, f"{service}: no HTTP latency histogram"
        assert any(ls.get("http_method", ls.get("http_request_method")) == "POST"
                   for _, ls, _ in counts), counts
        assert any(re.match(r"http_server_(request_)?duration.*_bucket$", n)
                   for n, _, _ in samples(text)), f"{service}: no latency buckets"


async def test_feedback_counts_notifications_by_channel_and_outcome(
    traffic: tuple[ThreadServices, Thread],
) -> None:
    s, _ = traffic
    text = await eventually(
        s, "feedback", lambda t: total(t, "gt_notifications_total", channel="email",
                                       outcome="sent") >= 1, "an email counted as sent")
    outcomes = {(ls["channel"], ls["outcome"]) for ls, _ in series(text, "gt_notifications_total")}
    assert ("email", "sent") in outcomes
    assert not [o for o in outcomes if o[1] not in
                {"sent", "handed_to_peer", "held", "deferred", "cancelled", "failed"}], outcomes
