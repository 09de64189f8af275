"""Intake's database round trips per logged conversation (docs/performance.md findings 6, 10),
and the participant paths that the fewer statements must still get right."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
import pytest

from contracts import ActorRole
from eventcore.embedded import StackEndpoints
from services.intake.handlers import Intake
from tests.conftest import bearer
from tests.integration.intake_fixtures import RunningIntake, running_intake
from tests.integration.test_intake_http import EMAIL, NAME, request

pytestmark = pytest.mark.integration

FEEDBACK = bearer(ActorRole.SYSTEM, "feedback")


@pytest.fixture(scope="module")
async def intake(endpoints: StackEndpoints) -> AsyncIterator[RunningIntake]:
    async with running_intake(endpoints) as running:
        yield running


class CountingPool:
    """The intake pool, recording the statements each request sends on its connection."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements: list[str] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn:
            def record(logged: Any) -> None:
                text = " ".join(str(logged.query).split())
                if not _asyncpg_introspection(text):
                    self.statements.append(text)

            conn.add_query_logger(record)
            try:
                yield conn
            finally:
                conn.remove_query_logger(record)


def _asyncpg_introspection(text: str) -> bool:
    """asyncpg's own look-ups of a type it meets for the first time on a connection."""
    return "typeinfo_tree" in text or "set_config('jit'" in text


@contextmanager
def counting(intake: RunningIntake) -> Iterator[CountingPool]:
    handler: Intake = intake.app.state.intake
    real = handler.pool
    counter = CountingPool(real)
    handler.pool = counter  # type: ignore[assignment]
    try:
        yield counter
    finally:
        handler.pool = real


def _own(statements: list[str]) -> list[str]:
    return [s for s in statements if "source_head" not in s and "INTO events" not in s]


def _uses(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if table in s]


async def test_a_new_participants_conversation_is_one_statement(intake: RunningIntake) -> None:
    with counting(intake) as pool:
        answer = await intake.client.post("/conversations", json=request())
    assert answer.status_code == 201, answer.text
    # The key, the sealed contact, the event (chained, the head moved) and both read models:
    # one statement, its own transaction (no BEGIN, no COMMIT), one round trip.
    [statement] = pool.statements
    for table in ("source_head", "INTO events", "participant_keys", "participant_contacts",
                  "INTO conversations", "INTO participants "):
        assert table in statement, table
    pid = answer.json()["participant_id"]
    conversation = await intake.fetchrow(
        "SELECT c.sequence, e.event_id FROM conversations c JOIN events e USING (sequence)"
        " WHERE c.participant_id = $1", pid)
    assert conversation is not None and str(conversation["event_id"]) == answer.json()["event_id"]
    opened = await intake.client.get(f"/internal/participants/{pid}/contact", headers=FEEDBACK)
    assert opened.status_code == 200 and opened.json()["email"] == EMAIL


async def test_a_new_participant_is_all_or_nothing(
    intake: RunningIntake, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should any of the statement's writes fail, none of them lands: no event, no head move,
    no read model, no contact."""
    taken = (await intake.client.post("/conversations", json=request())).json()["participant_id"]
    counts = ("SELECT (SELECT sequence FROM source_head), (SELECT count(*) FROM events),"
              " (SELECT count(*) FROM conversations), (SELECT count(*) FROM participant_contacts),"
              " (SELECT count(*) FROM participant_keys),"
              " (SELECT array_agg(conversations ORDER BY participant_id) FROM participants)")
    before = await intake.fetchrow(counts)
    monkeypatch.setattr("services.intake.handlers.new_participant_id", lambda: taken)
    # The in-process client raises what the server would answer 500 to.
    with pytest.raises(asyncpg.UniqueViolationError, match="participant_keys"):
        await intake.client.post("/conversations", json=request())
    assert await intake.fetchrow(counts) == before
    monkeypatch.undo()
    again = await intake.client.post("/conversations", json=request())
    assert again.status_code == 201, again.text


async def test_a_returning_participants_conversation_is_one_guarded_append(
    intake: RunningIntake,
) -> None:
    """Their key read without a lock; then one transaction: the guard locks their row (before
    the source head, as an erasure does) and the event, both read models and the head move are
    one statement, grouped with other callers' (`eventcore.store.guarded`)."""
    pid = (await intake.client.post("/conversations", json=request())).json()["participant_id"]
    with counting(intake) as pool:
        again = await intake.client.post("/conversations", json=request(participant={"id": pid}))
    assert again.status_code == 201, again.text
    # Email feedback asked, no address given now: the one on record is read, and it is enough.
    key, contact, begin, guard, append, commit = pool.statements
    assert "participant_keys" in key and "FOR UPDATE" not in key
    assert "participant_contacts" in contact
    assert (begin, commit) == ("BEGIN;", "COMMIT;")
    # Their row and their contact's locked (email feedback needs the address still there).
    assert "FROM participants p JOIN participant_contacts c" in guard
    assert "NOT p.erased AND c.has_email IS NOT FALSE" in guard
    assert guard.endswith("FOR UPDATE OF p, c SKIP LOCKED")  # in a group: a held row waits alone
    for table in ("source_head", "INTO events", "INTO conversations", "INTO participants "):
        assert table in append, table


async def test_a_returning_participant_may_give_new_contact_details(intake: RunningIntake) -> None:
    pid = (await intake.client.post("/conversations", json=request())).json()["participant_id"]
    moved = "new.address@example.org"
    again = await intake.client.post("/conversations", json=request(
        participant={"id": pid, "contact": {"name": NAME, "email": moved}}))
    assert again.status_code == 201, again.text
    opened = await intake.client.get(f"/internal/participants/{pid}/contact", headers=FEEDBACK)
    assert opened.status_code == 200 and opened.json()["email"] == moved


async def test_email_feedback_needs_an_address_on_record_for_a_returning_participant(
    intake: RunningIntake,
) -> None:
    by_phone = request(participant={"contact": {"name": NAME, "phone": "+44 7700 900111"}})
    by_phone["consent"] = {**by_phone["consent"], "channel": "peer_in_person"}
    first = await intake.client.post("/conversations", json=by_phone)
    assert first.status_code == 201, first.text
    pid = first.json()["participant_id"]
    count = await intake.fetchval("SELECT count(*) FROM conversations")
    refused = await intake.client.post("/conversations", json=request(participant={"id": pid}))
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["field"] == "participant.contact.email"
    assert await intake.fetchval("SELECT count(*) FROM conversations") == count
    given = await intake.client.post("/conversations", json=request(
        participant={"id": pid, "contact": {"name": NAME, "email": EMAIL}}))
    assert given.status_code == 201, given.text


async def test_a_new_participant_without_an_address_is_refused_before_any_statement(
    intake: RunningIntake,
) -> None:
    with counting(intake) as pool:
        refused = await intake.client.post("/conversations", json=request(participant={}))
    assert refused.status_code == 422
    assert pool.statements == []
