"""Partners browse conversations logged through intake and draft insights, over HTTP, against
the real broker and PostgreSQL (one intake and one insight app shared by the module)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contracts import CONVERSATIONS, INSIGHTS, parse_event
from eventcore.embedded import StackEndpoints
from services.insight.projections import rebuild
from tests.integration.insight_fixtures import (
    RunningInsight,
    eventually,
    header,
    read_topic,
    running_insight,
)
from tests.integration.intake_fixtures import RunningIntake, running_intake

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(endpoints: StackEndpoints) -> AsyncIterator[RunningIntake]:
    async with running_intake(endpoints) as running:
        yield running


@pytest.fixture(scope="module")
async def insight(endpoints: StackEndpoints) -> AsyncIterator[RunningInsight]:
    async with running_insight(endpoints) as running:
        yield running


def place() -> str:
    return f"Testham {secrets.token_hex(4)}"


async def log(intake: RunningIntake, where: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "listener_id": "listener-1", "held_on": "2025-11-20", "setting": "community café",
        "place": where, "categories": ["community_support", "continuity_of_care"],
        "summary": "The café group is the first place that felt safe to talk.",
        "quotes": ["They just listened."], "support_shared": ["peer support group"],
        "consent": {"to_store": True, "to_quote": True, "to_recontact": False, "channel": "none"},
        "equity": {"age_band": "25-34", "ethnicity": "Black African"},
    } | overrides
    answer = await intake.client.post("/conversations", json=body)
    assert answer.status_code == 201, answer.text
    accepted: dict[str, Any] = answer.json()
    return accepted


async def visible(insight: RunningInsight, where: str, count: int) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        page = (await insight.client.get("/conversations", params={"place": where})).json()
        return page["items"] if len(page["items"]) == count else None
    return await eventually(check)


def draft(cited: list[str], **overrides: Any) -> dict[str, Any]:
    return {"partner_id": "partner_a1", "statement": "Community groups feel easier to approach.",
            "category": "community_support", "conversation_ids": cited} | overrides


async def test_conversations_logged_in_intake_can_be_browsed_with_quotes_sealed(
    intake: RunningIntake, insight: RunningInsight
) -> None:
    where = place()
    first = await log(intake, where, held_on="2025-10-01")
    await log(intake, where, held_on="2025-10-05", categories=["cultural_factors"],
              equity={"ethnicity": "Bangladeshi"})
    await log(intake, where, held_on="2025-10-09", quotes=[])
    items = await visible(insight, where, 3)
    assert [i["held_on"] for i in items] == ["2025-10-09", "2025-10-05", "2025-10-01"]
    assert items[2]["event_id"] == first["event_id"] and items[2]["quote_count"] == 1
    assert "quotes" not in items[2] and "They just listened." not in str(items)

    async def ids(**params: Any) -> list[str]:
        answer = await insight.client.get("/conversations", params={"place": where} | params)
        assert answer.status_code == 200, answer.text
        return [i["held_on"] for i in answer.json()["items"]]

    assert await ids(category="cultural_factors") == ["2025-10-05"]
    assert await ids(held_from="2025-10-02", held_to="2025-10-08") == ["2025-10-05"]
    assert await ids(equity_field="ethnicity", equity_value="bangladeshi") == ["2025-10-05"]
    page = (await insight.client.get("/conversations", params={"place": where, "limit": 2})).json()
    assert len(page["items"]) == 2 and page["next_offset"] == 2
    assert await ids(limit=2, offset=2) == ["2025-10-01"]
    one = await insight.client.get(f"/conversations/{first['id']}")
    assert one.status_code == 200 and one.json()["summary"].startswith("The café group")


async def test_a_drafted_insight_is_published_resting_on_the_conversation_events(
    intake: RunningIntake, insight: RunningInsight, endpoints: StackEndpoints
) -> None:
    where = place()
    logged = [await log(intake, where) for _ in range(2)]
    await visible(insight, where, 2)
    cited = [c["id"] for c in reversed(logged)]
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    answer = await insight.client.post("/insights", json=draft(cited), headers={
        "x-correlation-id": "corr-insight-1", "traceparent": trace})
    assert answer.status_code == 201, answer.text
    accepted = answer.json()
    assert accepted["revision"] == 1 and answer.headers["location"] == f"/insights/{accepted['id']}"

    [record] = await read_topic(endpoints, INSIGHTS,
                                lambda r: header(r, "ce_id") == accepted["event_id"])
    event = parse_event(record.value)
    assert event.type == "InsightDrafted" and event.source == "insight"
    assert event.causationids == tuple(c["event_id"] for c in reversed(logged))
    assert [str(c) for c in event.data.conversation_ids] == cited
    assert str(event.data.insight_id) == event.subject == accepted["id"]
    assert event.correlationid == "corr-insight-1" and event.subjectversion == 1
    # It continues the journey of the first cited conversation (the caller's trace is linked).
    [cited_first] = await read_topic(endpoints, CONVERSATIONS,
                                     lambda r: header(r, "ce_id") == logged[-1]["event_id"])
    journey = str(parse_event(cited_first.value).traceparent).split("-")[1]
    assert event.traceparent is not None and event.traceparent.split("-")[1] == journey
    assert journey != trace.split("-")[1]
    assert event.actorid == "partner_a1" and event.actorrole == "lived_experience_partner"
    async def listed(**params: Any) -> list[str]:
        page = (await insight.client.get("/insights", params={"conversation_id": cited[0]}
                                         | params)).json()
        return [i["insight_id"] for i in page["items"]]
    assert await listed(category="community_support", partner_id="partner_a1") == [accepted["id"]]
    assert await listed(category="cultural_factors") == []


async def test_a_revision_is_a_new_version_and_history_is_kept(
    intake: RunningIntake, insight: RunningInsight, endpoints: StackEndpoints
) -> None:
    where = place()
    a, b = await log(intake, where), await log(intake, where, categories=["cultural_factors"])
    await visible(insight, where, 2)
    first = (await insight.client.post("/insights", json=draft([a["id"]]))).json()
    revision = draft([a["id"], b["id"]], partner_id="partner_b2", category="cultural_factors",
                     statement="Cultural fit decides who asks for help.", based_on_revision=1)
    answer = await insight.client.post(f"/insights/{first['id']}/revisions", json=revision)
    assert answer.status_code == 201, answer.text
    second = answer.json()
    assert second["revision"] == 2 and second["id"] == first["id"]

    detail = (await insight.client.get(f"/insights/{first['id']}")).json()
    assert detail["revision"] == 2 and detail["category"] == "cultural_factors"
    assert detail["drafted_by"] == "partner_a1" and detail["partner_id"] == "partner_b2"
    assert [r["revision"] for r in detail["revisions"]] == [1, 2]
    assert detail["revisions"][0]["conversation_ids"] == [a["id"]]
    assert detail["revisions"][1]["causation_ids"] == [a["event_id"], b["event_id"]]
    [record] = await read_topic(endpoints, INSIGHTS,
                                lambda r: header(r, "ce_id") == second["event_id"])
    assert parse_event(record.value).subjectversion == 2

    stale = await insight.client.post(f"/insights/{first['id']}/revisions",
                                      json=revision | {"statement": "Later words."})
    assert stale.status_code == 409 and stale.json()["problems"][0]["field"] == "based_on_revision"
    unknown = await insight.client.post(f"/insights/{secrets.token_hex(16)}/revisions",
                                        json=draft([a["id"]]))
    assert unknown.status_code == 404

    assert insight.runtime.pool is not None
    async with insight.runtime.pool.acquire() as conn:
        assert await rebuild(conn, insight.runtime.store) >= 2
    assert (await insight.client.get(f"/insights/{first['id']}")).json() == detail


async def test_two_revisions_of_one_version_at_once_record_one_and_refuse_the_other(
    intake: RunningIntake, insight: RunningInsight
) -> None:
    where = place()
    cid = (await log(intake, where))["id"]
    await visible(insight, where, 1)
    made = await insight.client.post("/insights", json=draft([cid]),
                                     headers={"traceparent": "garbled"})  # dropped, not fatal
    assert made.status_code == 201, made.text
    first = made.json()
    answers = await asyncio.gather(*[
        insight.client.post(f"/insights/{first['id']}/revisions",
                            json=draft([cid], statement=f"Version {n}.", based_on_revision=1))
        for n in (1, 2)])
    assert sorted(a.status_code for a in answers) == [201, 409]
    detail = (await insight.client.get(f"/insights/{first['id']}")).json()
    assert [r["revision"] for r in detail["revisions"]] == [1, 2]
