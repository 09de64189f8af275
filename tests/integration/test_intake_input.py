"""Bad input to intake: a clear 4xx naming the field, nothing stored, nothing emitted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventcore.embedded import StackEndpoints
from tests.integration.intake_fixtures import RunningIntake, running_intake
from tests.integration.test_intake_http import EMAIL, NAME, request

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(endpoints: StackEndpoints) -> AsyncIterator[RunningIntake]:
    async with running_intake(endpoints, intake_max_body_bytes=64 * 1024) as running:
        yield running


async def store_head(intake: RunningIntake) -> tuple[int, int, int]:
    rt = intake.runtime
    assert rt.pool is not None
    async with rt.pool.acquire() as conn:
        return (
            await rt.store.head(conn),
            await conn.fetchval("SELECT count(*) FROM conversations"),
            await conn.fetchval("SELECT count(*) FROM participant_keys"),
        )


def without(field: str) -> dict[str, Any]:
    body = request()
    del body[field]
    return body


def with_consent(**changes: Any) -> dict[str, Any]:
    body = request()
    body["consent"] = {**body["consent"], **changes}
    return body


CASES: list[tuple[str, Any, int, str, str]] = [
    ("missing field", without("summary"), 422, "summary", "missing"),
    ("unknown field", {**request(), "mood": "low"}, 422, "mood", "unknown field"),
    ("unknown category", request(categories=["astrology"]), 422, "categories", "unknown enquiry category"),
    ("no category", request(categories=[]), 422, "categories", "at least 1"),
    ("wrong type", request(categories="community_support"), 422, "categories", "tuple"),
    ("wrong date", request(held_on="last tuesday"), 422, "held_on", "date"),
    ("future date", request(held_on="2999-01-01"), 422, "held_on", "future"),
    ("oversized text", request(summary="x" * 4001), 422, "summary", "at most 4000"),
    ("quote without consent", with_consent(to_quote=False), 422, "quotes", "consent"),
    ("no consent to store", with_consent(to_store=False), 422, "consent.to_store", ""),
    ("recontact without channel", with_consent(channel="none"), 422, "consent", ""),
    ("identifying summary", request(summary=f"{NAME} said the wait was long"), 422, "summary",
     "non-identifying"),
    ("email in summary", request(summary=f"write to {EMAIL} about it"), 422, "summary",
     "non-identifying"),
    ("unknown participant", request(participant={"id": "p_doesnotexist1"}), 404, "participant.id",
     "unknown participant"),
    ("bad participant id", request(participant={"id": "Robert Smith"}), 422, "participant.id",
     "pattern"),
    ("email channel without email", request(participant={}), 422, "participant.contact.email",
     "email address is needed"),
]


@pytest.mark.parametrize(("case", "body", "status", "field", "problem"), CASES,
                         ids=[c[0] for c in CASES])
async def test_bad_conversation_is_refused_naming_the_field_and_nothing_changes(
    intake: RunningIntake, case: str, body: Any, status: int, field: str, problem: str
) -> None:
    before = await store_head(intake)
    answer = await intake.client.post("/conversations", json=body)
    assert answer.status_code == status, answer.text
    problems = answer.json()["problems"]
    assert any(p["field"] == field and problem in p["problem"] for p in problems), problems
    assert NAME not in answer.text and EMAIL not in answer.text
    assert await store_head(intake) == before


async def test_malformed_json_is_a_400_naming_the_body(intake: RunningIntake) -> None:
    before = await store_head(intake)
    answer = await intake.client.post("/conversations", content=b'{"summary": "unterminated',
                                      headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["problems"] == [{"field": "body", "problem": "malformed JSON"}]
    assert await store_head(intake) == before


async def test_oversized_body_is_a_413_before_it_is_read(intake: RunningIntake) -> None:
    before = await store_head(intake)
    body = json.dumps(request(quotes=["q" * 1999] * 40)).encode()
    answer = await intake.client.post("/conversations", content=body,
                                      headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["problems"][0]["field"] == "body"
    assert await store_head(intake) == before


async def test_a_good_conversation_after_bad_ones_is_accepted(intake: RunningIntake) -> None:
    head, conversations, _ = await store_head(intake)
    answer = await intake.client.post("/conversations", json=request())
    assert answer.status_code == 201, answer.text
    assert answer.json()["sequence"] == head + 1
    assert (await store_head(intake))[:2] == (head + 1, conversations + 1)
