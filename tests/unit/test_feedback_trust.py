"""Feedback acts only on events from the service that owns them (or a configured trust system)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from eventcore.consumer import DomainRejection
from services.feedback.handlers import Policies
from tests.integration.feedback_fixtures import TRUST_SYSTEM, Upstream


async def test_a_forged_erasure_or_action_from_another_source_is_refused() -> None:
    policies = Policies(notify_from="in_progress", trusted_action_sources=(TRUST_SYSTEM,))
    impostor = Upstream("mallory.example")
    forged = [impostor.erased("p_a1b2c3d4e5f6", 1), impostor.action([uuid4()])]
    for event in forged:
        with pytest.raises(DomainRejection, match="may not publish"):
            await policies.when_upstream_event_arrives_resolve_who_to_tell(None, event)  # type: ignore[arg-type]
