"""Who may call insight: every route × every role; partners draft only in their own name."""

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
from tests.integration.insight_fixtures import RunningInsight, running_insight

pytestmark = pytest.mark.integration
PARTNER, LEAD, AUDITOR, ADMIN = "lived_experience_partner", "service_lead", "auditor", "admin"

TABLE = {
    ("GET", "/conversations"): (PARTNER, AUDITOR, ADMIN),
    ("GET", "/conversations/{conversation_id}"): (PARTNER, AUDITOR, ADMIN),
    ("POST", "/insights"): (PARTNER, ADMIN),
    ("POST", "/insights/{insight_id}/revisions"): (PARTNER, ADMIN),
    ("GET", "/insights"): (PARTNER, LEAD, AUDITOR, ADMIN),
    ("GET", "/insights/{insight_id}"): (PARTNER, LEAD, AUDITOR, ADMIN),
}


@pytest.fixture(scope="module")
async def insight(endpoints: StackEndpoints) -> AsyncIterator[RunningInsight]:
    async with running_insight(endpoints) as running:
        yield running


async def test_every_route_admits_exactly_its_declared_roles(insight: RunningInsight) -> None:
    await check_every_route(insight.client, insight.app, TABLE)


async def test_a_missing_or_untrustworthy_token_is_401_on_every_route(insight: RunningInsight) -> None:
    await check_untrusted_tokens(insight.client, insight.app)


async def test_a_partner_drafts_and_revises_only_in_their_own_name(insight: RunningInsight) -> None:
    draft = {"partner_id": "someone-else", "statement": "Groups feel easier than clinics.",
             "category": "community_support", "conversation_ids": [str(uuid4())]}
    partner = ActorRole.LIVED_EXPERIENCE_PARTNER
    await check_actor_fields(insight.client, [
        ("POST", "/insights", partner, draft, "partner_id"),
        ("POST", "/insights/{insight_id}/revisions", partner, draft, "partner_id"),
    ])
