"""Who may call priority: every route × every role; partners run sessions, service leads and
trust systems record actions, each only in their own name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from contracts import ActorRole
from eventcore.embedded import StackEndpoints
from tests.integration.access_kit import (
    check_actor_fields,
    check_every_route,
    check_untrusted_tokens,
)
from tests.integration.priority_fixtures import RunningPriority, running_priority

pytestmark = pytest.mark.integration
PARTNER, LEAD, TRUST = "lived_experience_partner", "service_lead", "trust_system"
AUDITOR, ADMIN = "auditor", "admin"

TABLE = {
    ("POST", "/sessions"): (PARTNER, ADMIN),
    ("GET", "/sessions/{session_id}"): (PARTNER, LEAD, AUDITOR, ADMIN),
    ("POST", "/sessions/{session_id}/responses"): (PARTNER, ADMIN),
    ("POST", "/sessions/{session_id}/decision"): (PARTNER, ADMIN),
    ("GET", "/insights"): (PARTNER, LEAD, AUDITOR, ADMIN),
    ("GET", "/priorities"): (PARTNER, LEAD, TRUST, AUDITOR, ADMIN),
    ("GET", "/priorities/{priority_id}"): (PARTNER, LEAD, TRUST, AUDITOR, ADMIN),
    ("POST", "/actions"): (LEAD, TRUST, ADMIN),
    ("POST", "/actions/{action_id}/status"): (LEAD, TRUST, ADMIN),
    ("GET", "/actions"): (PARTNER, LEAD, TRUST, AUDITOR, ADMIN),
}


@pytest.fixture(scope="module")
async def priority(endpoints: StackEndpoints) -> AsyncIterator[RunningPriority]:
    async with running_priority(endpoints) as running:
        yield running


async def test_every_route_admits_exactly_its_declared_roles(priority: RunningPriority) -> None:
    await check_every_route(priority.client, priority.app, TABLE)


async def test_a_missing_or_untrustworthy_token_is_401_on_every_route(
    priority: RunningPriority,
) -> None:
    await check_untrusted_tokens(priority.client, priority.app)


async def test_sessions_and_actions_are_recorded_only_in_the_callers_own_name(
    priority: RunningPriority,
) -> None:
    partner, lead = ActorRole.LIVED_EXPERIENCE_PARTNER, ActorRole.SERVICE_LEAD
    action = {"recorded_by": "someone-else", "priority_ids": [str(uuid4())],
              "description": "A weekly drop-in.", "service": "community mental health team",
              "place": "Hackney", "framework": "Community Mental Health Framework",
              "framework_area": "Access and engagement", "status": "planned"}
    await check_actor_fields(priority.client, [
        ("POST", "/sessions", partner, {"opened_by": "someone-else", "insight_ids": [str(uuid4())],
                                        "statement": "Offer support in community groups."},
         "opened_by"),
        ("POST", "/sessions/{session_id}/responses", partner,
         {"partner_id": "someone-else", "response": "support"}, "partner_id"),
        ("POST", "/sessions/{session_id}/decision", partner, {"decided_by": "someone-else"},
         "decided_by"),
        ("POST", "/actions", lead, action, "recorded_by"),
        ("POST", "/actions", ActorRole.TRUST_SYSTEM, action, "recorded_by"),
        ("POST", "/actions/{action_id}/status", lead,
         {"recorded_by": "someone-else", "status": "done"}, "recorded_by"),
    ])
