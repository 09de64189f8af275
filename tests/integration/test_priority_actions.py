"""Actions recorded over HTTP against agreed priorities, against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest

from contracts.topics import ACTIONS
from eventcore.embedded import StackEndpoints
from services.priority.projections import rebuild
from tests.integration.priority_fixtures import (
    FakeSource,
    RunningPriority,
    agree_priority,
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
async def agreed(priority: RunningPriority, endpoints: StackEndpoints) -> list[dict[str, Any]]:
    """Two agreed priorities, shared by the tests (each test records its own actions)."""
    source = FakeSource(endpoints)
    insights = await drafted_insights(priority, source, 2)
    return [await agree_priority(priority, insights[:1]), await agree_priority(priority, insights)]


def action(priority_ids: list[str], **overrides: Any) -> dict[str, Any]:
    body = {
        "recorded_by": "lead_3Rt9", "priority_ids": priority_ids,
        "description": f"Weekly drop-in with a mental health worker ({uuid4().hex[:8]}).",
        "service": "community mental health team", "place": "Tower Hamlets",
        "framework": "Community Mental Health Framework",
        "framework_area": "Access and engagement", "status": "planned",
    }
    body.update(overrides)
    return body


async def test_an_action_is_published_resting_on_its_priorities_and_its_status_moves_on(
    priority: RunningPriority, agreed: list[dict[str, Any]], endpoints: StackEndpoints
) -> None:
    ids = [agreed[0]["priority_id"], agreed[1]["priority_id"]]
    answer = await priority.client.post("/actions", json=action(ids),
                                        headers={"x-correlation-id": "corr-action-1"})
    assert answer.status_code == 201, answer.text
    recorded = answer.json()
    assert recorded["version"] == 1 and recorded["status"] == "planned"

    moved = await priority.client.post(f"/actions/{recorded['action_id']}/status",
                                       json={"recorded_by": "lead_3Rt9", "status": "in_progress"})
    assert moved.status_code == 200 and moved.json()["version"] == 2 and moved.json()["changed"]
    again = await priority.client.post(f"/actions/{recorded['action_id']}/status",
                                       json={"recorded_by": "lead_3Rt9", "status": "in_progress"})
    assert again.status_code == 200 and not again.json()["changed"]
    assert again.json()["version"] == 2

    first_id, second_id = recorded["event_id"], moved.json()["event_id"]
    events = await read_events(endpoints, ACTIONS, {first_id, second_id})
    first, second = events[first_id], events[second_id]
    assert first.type == second.type == "ActionTaken"
    assert first.subject == second.subject == recorded["action_id"]
    assert (first.subjectversion, second.subjectversion) == (1, 2)
    assert (first.data.status, second.data.status) == ("planned", "in_progress")
    agreed_event_ids = (agreed[0]["event_id"], agreed[1]["event_id"])
    assert first.causationids == second.causationids == agreed_event_ids
    assert first.correlationid == "corr-action-1"
    assert first.actorrole == "service_lead"
    assert first.data.framework_area == "Access and engagement"

    listed = (await priority.client.get("/actions", params={"priority_id": ids[0]})).json()
    [shown] = [a for a in listed if a["action_id"] == recorded["action_id"]]
    assert shown["status"] == "in_progress" and shown["version"] == 2
    on_priority = (await priority.client.get(f"/priorities/{ids[1]}")).json()["actions"]
    assert recorded["action_id"] in {a["action_id"] for a in on_priority}


async def test_a_duplicate_action_is_refused_naming_the_one_already_recorded(
    priority: RunningPriority, agreed: list[dict[str, Any]]
) -> None:
    ids = [agreed[0]["priority_id"], agreed[1]["priority_id"]]
    body = action(ids)
    first = await priority.client.post("/actions", json=body)
    assert first.status_code == 201
    events_before = await priority.fetchval("SELECT count(*) FROM events")

    same = action(list(reversed(ids)), description=body["description"].upper() + " ",
                  service="Community Mental Health Team", status="done",
                  framework_area="Workforce")
    refused = await priority.client.post("/actions", json=same)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "duplicate_action"
    assert first.json()["action_id"] in refused.json()["problems"][0]["problem"]
    assert await priority.fetchval("SELECT count(*) FROM events") == events_before

    narrower = await priority.client.post("/actions", json=action(ids[:1],
                                                                  description=body["description"]))
    assert narrower.status_code == 201, "a different set of priorities is a different action"


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"priority_ids": ["00000000-0000-4000-8000-000000000001"]}, 422, "priority_ids.0"),
    ({"priority_ids": []}, 422, "priority_ids"),
    ({"status": "finished"}, 422, "status"),
    ({"service": ""}, 422, "service"),
    ({"place": "x" * 121}, 422, "place"),
    ({"recorded_by": "Jane Doe"}, 422, "recorded_by"),
])
async def test_a_bad_action_is_refused_naming_the_field_and_nothing_is_emitted(
    priority: RunningPriority, agreed: list[dict[str, Any]], change: dict[str, Any], status: int,
    field: str,
) -> None:
    events_before = await priority.fetchval("SELECT count(*) FROM events")
    answer = await priority.client.post(
        "/actions", json={**action([agreed[0]["priority_id"]]), **change})
    assert answer.status_code == status, answer.text
    assert field in [p["field"] for p in answer.json()["problems"]]
    assert "Jane Doe" not in answer.text and "finished" not in answer.text
    assert await priority.fetchval("SELECT count(*) FROM events") == events_before


async def test_citing_a_known_and_an_unknown_priority_names_only_the_unknown_one(
    priority: RunningPriority, agreed: list[dict[str, Any]]
) -> None:
    ids = [agreed[0]["priority_id"], str(uuid4())]
    answer = await priority.client.post("/actions", json=action(ids))
    assert answer.status_code == 422
    assert [p["field"] for p in answer.json()["problems"]] == ["priority_ids.1"]


async def test_status_updates_of_unknown_actions_are_refused(priority: RunningPriority) -> None:
    unknown = await priority.client.post(f"/actions/{uuid4()}/status",
                                         json={"recorded_by": "lead_3Rt9", "status": "done"})
    assert unknown.status_code == 404 and unknown.json()["problems"][0]["field"] == "action_id"


async def test_rebuilding_refolds_priorities_and_own_actions_from_the_store(
    priority: RunningPriority, agreed: list[dict[str, Any]]
) -> None:
    answer = await priority.client.post("/actions", json=action([agreed[0]["priority_id"]]))
    await priority.client.post(f"/actions/{answer.json()['action_id']}/status",
                               json={"recorded_by": "lead_3Rt9", "status": "done"})
    pool, store = priority.runtime.pool, priority.runtime.store
    assert pool is not None
    snapshot = ("SELECT array_agg(to_jsonb(p) ORDER BY priority_id) FROM priorities p",
                "SELECT array_agg(to_jsonb(a) ORDER BY action_id) FROM actions a")
    async with pool.acquire() as conn:
        before = [await conn.fetchval(sql) for sql in snapshot]
        folded = await rebuild(conn, store)
        after = [await conn.fetchval(sql) for sql in snapshot]
    assert folded == await priority.fetchval("SELECT count(*) FROM events")
    assert after == before


async def test_two_leads_recording_the_same_action_at_once_record_it_once(
    priority: RunningPriority, agreed: list[dict[str, Any]]
) -> None:
    body = action([agreed[1]["priority_id"]])
    answers = await asyncio.gather(*[priority.client.post("/actions", json=body) for _ in range(4)])
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
