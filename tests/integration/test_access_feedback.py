"""Who may call feedback: every route × every role; peer workers close follow-ups only in their
own name."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from contracts import ActorRole
from eventcore.embedded import StackEndpoints
from services.feedback.domain.delivery import ContactLookup, Gone
from tests.integration.access_kit import (
    check_actor_fields,
    check_every_route,
    check_untrusted_tokens,
)
from tests.integration.feedback_fixtures import Clock, RunningFeedback, running_feedback

pytestmark = pytest.mark.integration
LISTENER, PARTNER, LEAD = "community_listener", "lived_experience_partner", "service_lead"
TRUST, AUDITOR, ADMIN = "trust_system", "auditor", "admin"

TABLE = {
    ("GET", "/notifications"): (PARTNER, LEAD, AUDITOR, ADMIN),
    ("GET", "/story/{action_id}"): (LISTENER, PARTNER, LEAD, TRUST, AUDITOR, ADMIN),
    ("GET", "/peer-tasks"): (LISTENER, AUDITOR, ADMIN),
    ("POST", "/peer-tasks/{task_id}/done"): (LISTENER, ADMIN),
}


class NoContacts:
    async def read(self, participant_id: str) -> ContactLookup:
        return Gone(participant_id, "unknown_participant")


@pytest.fixture(scope="module")
async def feedback(endpoints: StackEndpoints) -> AsyncIterator[RunningFeedback]:
    async with running_feedback(endpoints, contacts=NoContacts(), clock=Clock(),
                                smtp_port=1) as running:
        yield running


async def test_every_route_admits_exactly_its_declared_roles(feedback: RunningFeedback) -> None:
    await check_every_route(feedback.client, feedback.app, TABLE)


async def test_a_missing_or_untrustworthy_token_is_401_on_every_route(
    feedback: RunningFeedback,
) -> None:
    await check_untrusted_tokens(feedback.client, feedback.app)


async def test_a_peer_worker_closes_follow_ups_only_in_their_own_name(
    feedback: RunningFeedback,
) -> None:
    await check_actor_fields(feedback.client, [
        ("POST", "/peer-tasks/{task_id}/done", ActorRole.COMMUNITY_LISTENER,
         {"actor_id": "someone-else", "outcome": "told"}, "actor_id"),
    ])
