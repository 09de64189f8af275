"""Hostile text and headers on requests that succeed, where they reach the store, the event and
the broker: never a 5xx; text with control characters refused naming the field; anything else
(SQL, script, CRLF, traversal as plain text) accepted and read back exactly as sent, inert.

The generic suite (test_http_hostile) mostly meets requests refused for unknown ids; these flows
cite real conversations, insights, sessions and priorities so that the hostile parts get through.
"""

from __future__ import annotations

import json
import os
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import CONVERSATIONS
from tests.hostile.conftest import CASES_TRIED, Services, in_thread
from tests.hostile.kafka_cases import valid_event
from tests.hostile.strategies import (
    INJECTIONS,
    MARK,
    WHITE_SPACE,
    as_received,
    dumps,
    hostile_text,
    is_dirty,
)
from tests.integration.priority_fixtures import FakeSource, drafted_insights, eventually

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("GT_HOSTILE_SUCCESS_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

#: Trace and correlation headers as a hostile caller might send them.
hostile_headers = st.fixed_dictionaries({}, optional={
    "x-correlation-id": st.one_of(st.sampled_from(INJECTIONS), hostile_text),
    "traceparent": st.one_of(hostile_text, st.sampled_from([
        "00-" + "0" * 32 + "-" + "0" * 16 + "-00", "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",
        "00-" + "A" * 32 + "-" + "b" * 16 + "-01", "00-" + "a" * 32 + "-" + "b" * 16 + "-01-x"])),
    "tracestate": hostile_text,
}).map(lambda h: {k: v for k, v in h.items() if _sendable(v)})
#: Plain-language text that carries an attack as words; within every field's length limit.
texts = st.one_of(st.sampled_from([t for t in INJECTIONS if len(t) <= 120]),
                  hostile_text.filter(lambda t: len(t) <= 120))


def _sendable(value: str) -> bool:
    """httpx sends header values as ASCII/latin-1 without line breaks; the raw-ASGI suite
    covers the rest."""
    return value.isascii() and value.isprintable()


def post(services: Services, client: Any, path: str, body: Any, headers: dict[str, str]) -> Any:
    """POST JSON as a client would send it (lone surrogates as \\uD800 escapes)."""
    return services.run(client.post(path, content=dumps(body),
                                     headers={**headers, "content-type": "application/json"}))


def expect(answer: Any, texts: list[str], *fields: str) -> bool:
    """Refused (naming one of `fields`) when a text is not plain text; else accepted."""
    assert answer.status_code < 500, answer.text
    if any(is_dirty(t) for t in texts):
        assert answer.status_code == 422, f"{texts!r} accepted: {answer.text}"
        assert {p["field"] for p in answer.json()["problems"]} & set(fields), answer.text
        assert MARK not in answer.text
        return False
    assert answer.status_code in (200, 201), answer.text
    return True


async def test_hostile_text_and_trace_headers_on_a_logged_conversation(services: Services) -> None:
    intake = services["intake"]
    tried = CASES_TRIED["http success paths"]

    @SETTINGS
    @given(summary=texts, quote=texts, headers=hostile_headers)
    def test(summary: str, quote: str, headers: dict[str, str]) -> None:
        tried["POST /conversations"] += 1
        body = {"listener_id": "listener-1", "held_on": "2026-01-20", "setting": "café",
                "place": "Hackney", "categories": ["community_support"], "summary": summary,
                "quotes": [quote], "participant": {},
                "consent": {"to_store": True, "to_quote": True, "to_recontact": False,
                            "channel": "none", "earliest_contact_on": None}}
        answer = post(services, intake.client, "/conversations", body, headers)
        if not expect(answer, [summary, quote], "summary", "quotes.0"):
            return
        stored = services.run(intake.client.get(f"/conversations/{answer.json()['id']}")).json()
        assert stored["summary"] == as_received(summary).strip(WHITE_SPACE)
        assert stored["quotes"] == [as_received(quote).strip(WHITE_SPACE)]

    await in_thread(test)


async def test_hostile_text_and_trace_headers_on_drafted_insights(services: Services) -> None:
    insight = services["insight"]
    event = valid_event("ConversationLogged")
    cid = str(uuid4())
    event["data"] |= {"conversation_id": cid, "participant_id": f"p_{uuid4().hex}",
                      "categories": ["community_support"]}
    event |= {"source": "intake", "subject": cid}
    producer = insight.app.state.runtime.producer
    await producer.send_and_wait(CONVERSATIONS, json.dumps(event).encode(),
                                 key=cid.encode())

    async def seen() -> bool:
        answer = await insight.client.get(f"/conversations/{cid}")
        return bool(answer.status_code == 200)

    await eventually(seen)
    tried = CASES_TRIED["http success paths"]

    @SETTINGS
    @given(statement=texts, headers=hostile_headers)
    def test(statement: str, headers: dict[str, str]) -> None:
        tried["POST /insights"] += 1
        body = {"partner_id": "partner-1", "statement": statement,
                "category": "community_support", "conversation_ids": [cid]}
        answer = post(services, insight.client, "/insights", body, headers)
        if not expect(answer, [statement], "statement"):
            return
        stored = services.run(insight.client.get(f"/insights/{answer.json()['id']}")).json()
        assert stored["statement"] == as_received(statement).strip(WHITE_SPACE)
        revised = post(services, insight.client, f"/insights/{answer.json()['id']}/revisions",
                       {**body, "statement": f"{stored['statement']} (revised)", "based_on_revision": 1},
                       headers)
        assert revised.status_code == 201, revised.text

    await in_thread(test)


async def test_hostile_text_and_trace_headers_through_a_session_to_an_action(
    services: Services,
) -> None:
    priority = services["priority"]
    [drafted] = await drafted_insights(priority.running, FakeSource(priority.running.endpoints), 1)
    insight_id = str(drafted.data.insight_id)
    tried = CASES_TRIED["http success paths"]

    @SETTINGS
    @given(statement=texts, description=texts, headers=hostile_headers)
    def test(statement: str, description: str, headers: dict[str, str]) -> None:
        tried["POST /sessions .. /decision, POST /actions .. /status"] += 1
        client = priority.client
        opened = post(services, client, "/sessions", {
            "opened_by": "partner-1", "insight_ids": [insight_id], "statement": statement},
            headers)
        if not expect(opened, [statement], "statement"):
            return
        session = opened.json()["session_id"]
        for partner in ("partner-1", "partner-2", "partner-3"):
            answer = services.run(client.post(f"/sessions/{session}/responses", headers=headers,
                                              json={"partner_id": partner, "response": "support"}))
            assert answer.status_code == 200, answer.text
        decided = services.run(client.post(f"/sessions/{session}/decision", headers=headers,
                                           json={"decided_by": "partner-1"}))
        assert decided.status_code == 200 and decided.json()["outcome"] == "agreed", decided.text
        action = post(services, client, "/actions", {
            "recorded_by": "lead-1", "priority_ids": [decided.json()["priority_id"]],
            "description": description, "service": "peer support", "place": "Hackney",
            "framework": "Community Mental Health Framework", "framework_area": "Access",
            "status": "planned"}, headers)
        if not expect(action, [description], "description"):
            return
        moved = services.run(client.post(f"/actions/{action.json()['action_id']}/status",
                                         headers=headers,
                                         json={"recorded_by": "lead-1", "status": "done"}))
        assert moved.status_code == 200, moved.text
        [stored] = services.run(client.get(f"/priorities/{decided.json()['priority_id']}")
                                ).json()["actions"]
        assert stored["description"] == as_received(description).strip(WHITE_SPACE)

    await in_thread(test)
