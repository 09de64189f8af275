"""Co-production sessions over HTTP, against the real broker and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from contracts import body_digest, chain_hash
from contracts.topics import PRIORITIES
from eventcore.embedded import StackEndpoints
from tests.integration.priority_fixtures import (
    FakeSource,
    RunningPriority,
    drafted_insights,
    read_events,
    running_priority,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def priority(endpoints: StackEndpoints) -> AsyncIterator[RunningPriority]:
    async with running_priority(endpoints) as running:
        yield running


@pytest.fixture(scope="module")
def insight_source(endpoints: StackEndpoints) -> FakeSource:
    return FakeSource(endpoints)


async def open_session(priority: RunningPriority, insights: list[Any], **extra: Any) -> str:
    answer = await priority.client.post("/sessions", json={
        "opened_by": "partner_a", "insight_ids": [str(e.data.insight_id) for e in insights],
        "statement": "Offer support through trusted community groups.", **extra})
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["session_id"]
    return session_id


async def respond(priority: RunningPriority, session_id: str, partner: str, response: str) -> Any:
    return await priority.client.post(f"/sessions/{session_id}/responses",
                                      json={"partner_id": partner, "response": response})


async def test_a_session_agrees_a_priority_and_publishes_it_resting_on_its_insights(
    priority: RunningPriority, insight_source: FakeSource, endpoints: StackEndpoints
) -> None:
    insights = await drafted_insights(priority, insight_source, 2)
    session_id = await open_session(priority, insights)
    for partner, response in [("partner_a", "object"), ("partner_b", "support"),
                              ("partner_c", "support"), ("partner_a", "support")]:
        assert (await respond(priority, session_id, partner, response)).status_code == 200
    so_far = (await priority.client.get(f"/sessions/{session_id}")).json()
    assert so_far["tally"] == {"support": 3, "object": 0, "abstain": 0} and so_far["would_agree"]

    decided = await priority.client.post(f"/sessions/{session_id}/decision",
                                         json={"decided_by": "partner_b"},
                                         headers={"x-correlation-id": "corr-session-1"})
    assert decided.status_code == 200, decided.text
    decision = decided.json()
    assert decision["outcome"] == "agreed" and decision["reasons"] == []

    event = (await read_events(endpoints, PRIORITIES, {decision["event_id"]}))[decision["event_id"]]
    assert event.type == "PriorityAgreed" and event.source == "priority"
    assert str(event.data.priority_id) == decision["priority_id"] == event.subject
    assert str(event.data.session_id) == session_id
    assert event.data.insight_ids == tuple(e.data.insight_id for e in insights)
    assert event.causationids == tuple(str(e.id) for e in insights)
    assert event.data.agreed_by == ("partner_a", "partner_b", "partner_c")
    assert event.data.tally.support == 3 and event.data.rule.quorum == 3
    assert (event.data.rule.majority_numerator, event.data.rule.majority_denominator) == (2, 3)
    assert event.correlationid == "corr-session-1" and event.actorid == "partner_b"
    assert event.hash == chain_hash(event.prevhash, event.sequence, body_digest(event))

    shown = (await priority.client.get(f"/priorities/{decision['priority_id']}")).json()
    assert shown["statement"] == event.data.statement and shown["actions"] == []
    listed = (await priority.client.get("/priorities")).json()
    assert decision["priority_id"] in {p["priority_id"] for p in listed}


@pytest.mark.parametrize(("responses", "reason"), [
    ([("partner_a", "support"), ("partner_b", "support")],
     "quorum not reached: 2 of 3 partners responded"),
    ([("partner_a", "support"), ("partner_b", "object"), ("partner_c", "object")],
     "support 1 of 3 is below the required 2/3"),
])
async def test_a_session_that_fails_the_rule_says_why_publishes_nothing_and_closes(
    priority: RunningPriority, insight_source: FakeSource, responses: list[tuple[str, str]],
    reason: str,
) -> None:
    insights = await drafted_insights(priority, insight_source, 1)
    session_id = await open_session(priority, insights)
    for partner, response in responses:
        await respond(priority, session_id, partner, response)
    assert (await priority.client.get(f"/sessions/{session_id}")).json()["reasons"] == [reason]
    events_before = await priority.fetchval("SELECT count(*) FROM events")

    decided = await priority.client.post(f"/sessions/{session_id}/decision",
                                         json={"decided_by": "partner_a"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["outcome"] == "not_agreed" and decided.json()["reasons"] == [reason]
    assert decided.json()["priority_id"] is None
    assert await priority.fetchval("SELECT count(*) FROM events") == events_before

    late = await respond(priority, session_id, "partner_z", "support")
    assert late.status_code == 409 and late.json()["problems"][0]["field"] == "session_id"
    again = await priority.client.post(f"/sessions/{session_id}/decision",
                                       json={"decided_by": "partner_a"})
    assert again.status_code == 409
    closed = (await priority.client.get(f"/sessions/{session_id}")).json()
    assert closed["status"] == "not_agreed" and closed["reasons"] == [reason]


async def test_a_session_may_choose_its_own_rule_within_bounds(
    priority: RunningPriority, insight_source: FakeSource
) -> None:
    insights = await drafted_insights(priority, insight_source, 1)
    rule = {"quorum": 2, "majority_numerator": 1, "majority_denominator": 2}
    session_id = await open_session(priority, insights, rule=rule)
    await respond(priority, session_id, "partner_a", "support")
    await respond(priority, session_id, "partner_b", "object")
    decided = await priority.client.post(f"/sessions/{session_id}/decision",
                                         json={"decided_by": "partner_a"})
    assert decided.json()["outcome"] == "agreed", decided.text
    assert decided.json()["tally"] == {"support": 1, "object": 1, "abstain": 0}


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"insight_ids": ["00000000-0000-4000-8000-000000000001"]}, 422, "insight_ids.0"),
    ({"rule": {"quorum": 1, "majority_numerator": 2, "majority_denominator": 3}}, 422,
     "rule.quorum"),
    ({"rule": {"quorum": 3, "majority_numerator": 1, "majority_denominator": 3}}, 422,
     "rule.majority_numerator"),
    ({"rule": {"quorum": 3, "majority_numerator": 4, "majority_denominator": 3}}, 422, "rule"),
    ({"statement": ""}, 422, "statement"),
    ({"opened_by": "Jane Doe <jane@example.org>"}, 422, "opened_by"),
    ({"surprise": "x"}, 422, "surprise"),
])
async def test_a_bad_session_is_refused_naming_the_field_and_nothing_is_stored(
    priority: RunningPriority, insight_source: FakeSource, body: dict[str, Any], status: int,
    field: str,
) -> None:
    insights = await drafted_insights(priority, insight_source, 1)
    sessions_before = await priority.fetchval("SELECT count(*) FROM sessions")
    request = {"opened_by": "partner_a", "insight_ids": [str(insights[0].data.insight_id)],
               "statement": "Offer support through trusted community groups.", **body}
    answer = await priority.client.post("/sessions", json=request)
    assert answer.status_code == status, answer.text
    assert field in [p["field"] for p in answer.json()["problems"]]
    assert "jane@example.org" not in answer.text
    assert await priority.fetchval("SELECT count(*) FROM sessions") == sessions_before


async def test_malformed_json_unknown_sessions_and_bad_responses_are_answered_plainly(
    priority: RunningPriority, insight_source: FakeSource
) -> None:
    broken = await priority.client.post("/sessions", content=b'{"opened_by": ',
                                        headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["problems"][0]["field"] == "body"
    unknown = "00000000-0000-4000-8000-0000000000ff"
    assert (await priority.client.get(f"/sessions/{unknown}")).status_code == 404
    assert (await respond(priority, unknown, "partner_a", "support")).status_code == 404
    assert (await priority.client.get("/sessions/not-a-uuid")).status_code == 422
    session_id = await open_session(priority, await drafted_insights(priority, insight_source, 1))
    maybe = await respond(priority, session_id, "partner_a", "maybe")
    assert maybe.status_code == 422 and maybe.json()["problems"][0]["field"] == "response"
    too_big = await priority.client.post("/sessions", content=b"x" * 70_000)
    assert too_big.status_code == 413

