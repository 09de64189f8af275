"""What an insight may not cite or say: erased or unknown conversations, broken input. Nothing is
stored or emitted when refused (one intake and one insight app shared by the module)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventcore.embedded import StackEndpoints
from tests.integration.insight_fixtures import RunningInsight, eventually, running_insight
from tests.integration.intake_fixtures import RunningIntake, running_intake
from tests.integration.test_insight_drafting import draft, log, place, visible

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(endpoints: StackEndpoints) -> AsyncIterator[RunningIntake]:
    async with running_intake(endpoints) as running:
        yield running


@pytest.fixture(scope="module")
async def insight(endpoints: StackEndpoints) -> AsyncIterator[RunningInsight]:
    async with running_insight(endpoints) as running:
        yield running


async def refused(insight: RunningInsight, path: str, body: Any, status: int) -> list[Any]:
    """Post, expect `status`, and check nothing reached the insight event store."""
    head = await insight.fetchval("SELECT sequence FROM source_head WHERE source = 'insight'")
    raw = body if isinstance(body, bytes) else None
    answer = await insight.client.post(path, content=raw, json=None if raw else body,
                                       headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    assert await insight.fetchval("SELECT sequence FROM source_head WHERE source = 'insight'") == head
    problems: list[Any] = answer.json()["problems"]
    return problems


async def test_an_erased_participants_conversation_is_hidden_and_cannot_be_cited(
    intake: RunningIntake, insight: RunningInsight
) -> None:
    where = place()
    kept, gone = await log(intake, where), await log(intake, where)
    await visible(insight, where, 2)
    first = (await insight.client.post("/insights", json=draft([kept["id"], gone["id"]]))).json()
    erasure = await intake.client.post(f"/participants/{gone['participant_id']}/erasure",
                                       json={"actor_id": "listener-1"})
    assert erasure.status_code == 200, erasure.text

    async def erased() -> dict[str, Any] | None:
        found: dict[str, Any] = (await insight.client.get(f"/conversations/{gone['id']}")).json()
        return found if found["erased"] else None
    shown = await eventually(erased)
    assert shown["summary"] is None and shown["equity"] is None
    assert [i["conversation_id"] for i in await visible(insight, where, 1)] == [kept["id"]]
    every = (await insight.client.get("/conversations", params={"place": where,
                                                                "include_erased": True})).json()
    assert len(every["items"]) == 2

    problems = await refused(insight, "/insights", draft([kept["id"], gone["id"]]), 422)
    assert [p["field"] for p in problems] == ["conversation_ids[1]"]
    assert "forgotten" in problems[0]["problem"]
    detail = (await insight.client.get(f"/insights/{first['id']}")).json()
    assert detail["erased_conversation_ids"] == [gone["id"]]
    revision = draft([kept["id"], gone["id"]], statement="Reworded.")
    await refused(insight, f"/insights/{first['id']}/revisions", revision, 422)


async def test_an_unknown_conversation_cannot_be_cited(insight: RunningInsight) -> None:
    problems = await refused(insight, "/insights", draft([str(uuid.uuid4())]), 422)
    assert [(p["field"], p["problem"][:7]) for p in problems] == [("conversation_ids[0]",
                                                                    "unknown")]


async def test_rules_and_malformed_input_are_answered_naming_the_field_without_echo(
    intake: RunningIntake, insight: RunningInsight
) -> None:
    where = place()
    cid = (await log(intake, where))["id"]
    await visible(insight, where, 1)
    secret = "Zanele-" + secrets.token_hex(4)
    cases: list[tuple[Any, int, list[str]]] = [
        (draft([]), 422, ["conversation_ids"]),
        (draft([cid, cid]), 422, ["conversation_ids[1]"]),
        (draft([cid], statement="   "), 422, ["statement"]),
        (draft([cid], statement=secret * 300), 422, ["statement"]),
        (draft([cid], category="clinical_and_social_help"), 422, ["category"]),
        (draft([cid], category=secret), 422, ["category"]),
        (draft([cid], partner_id=secret + " !"), 422, ["partner_id"]),
        (draft([secret]), 422, ["conversation_ids.0"]),
        (draft([cid]) | {"note": secret}, 422, ["note"]),
        (b'{"statement": "' + secret.encode(), 400, ["body"]),
    ]
    for body, status, fields in cases:
        problems = await refused(insight, "/insights", body, status)
        assert [p["field"] for p in problems] == fields, (fields, problems)
        assert secret not in str(problems)
    too_big = await insight.client.post("/insights", content=b"x" * (128 * 1024))
    assert too_big.status_code == 413


async def test_browse_filters_are_checked_naming_the_field(insight: RunningInsight) -> None:
    cases: list[tuple[dict[str, Any], str]] = [({"equity_field": "ethnicity"}, "equity_value"),
                          ({"equity_value": "x"}, "equity_field"),
                          ({"equity_field": "shoe_size", "equity_value": "x"}, "equity_field"),
                          ({"held_from": "2025-02-01", "held_to": "2025-01-01"}, "held_to"),
                          ({"limit": 0}, "limit"), ({"colour": "red"}, "colour")]
    for params, field in cases:
        answer = await insight.client.get("/conversations", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert [p["field"] for p in answer.json()["problems"]] == [field]
    assert (await insight.client.get(f"/conversations/{uuid.uuid4()}")).status_code == 404
    assert (await insight.client.get(f"/insights/{uuid.uuid4()}")).status_code == 404
    assert (await insight.client.get("/health/live")).json() == {"status": "ok"}
    assert (await insight.client.get("/health/ready")).json()["ready"] is True
    spec = (await insight.client.get("/openapi.json")).json()
    assert {"/conversations", "/insights", "/insights/{insight_id}/revisions"} <= set(spec["paths"])
