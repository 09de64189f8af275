"""Business rules the contracts carry, drafting new events, and topic naming."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from contracts import (
    ALL_TOPICS,
    CONVERSATIONS,
    EVENT_CLASSES,
    PARTICIPANTS,
    TOPIC_BY_TYPE,
    ActorRole,
    AgreementRule,
    Consent,
    ConversationLoggedEvent,
    InsightDraftedEvent,
    PriorityAgreed,
    RecontactConsent,
    Tally,
    dead_letter_topic,
    message_key,
    new_event,
)
from contracts.fields import example_of

from .builders import conversation


@pytest.mark.parametrize(
    ("to_recontact", "channel"),
    [(True, "email"), (True, "peer_in_person"), (False, "none")],
)
def test_consistent_consent_is_accepted(to_recontact: bool, channel: str) -> None:
    consent = RecontactConsent.model_validate(
        {"to_quote": False, "to_recontact": to_recontact, "channel": channel}
    )

    assert consent.earliest_contact_on is None


def test_recontact_without_a_channel_is_rejected_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="to_recontact is true, so a channel"):
        RecontactConsent(to_quote=False, to_recontact=True, channel="none")


def test_a_channel_without_recontact_is_rejected_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="to_recontact is false, so channel must be 'none'"):
        RecontactConsent(to_quote=False, to_recontact=False, channel="email")


def test_a_conversation_is_only_logged_with_consent_to_store() -> None:
    with pytest.raises(ValidationError, match="to_store"):
        Consent.model_validate(example_of(Consent) | {"to_store": False})


def test_quotes_need_consent_to_quote() -> None:
    refused = example_of(Consent) | {"to_quote": False}

    with pytest.raises(ValidationError, match="consent.to_quote is false"):
        conversation(consent=refused)
    assert conversation(consent=refused, quotes=()).quotes == ()


def test_categories_must_be_unique_and_present() -> None:
    with pytest.raises(ValidationError, match="Items must be unique"):
        conversation(categories=["community_support", "community_support"])
    with pytest.raises(ValidationError, match="at least 1 item"):
        conversation(categories=[])


@pytest.mark.parametrize(
    ("support", "object_", "abstain", "met"),
    [
        (4, 2, 0, True),
        (2, 1, 0, True),
        (3, 2, 1, False),
        (1, 1, 1, False),
        (2, 0, 0, False),
        (0, 0, 5, False),
    ],
)
def test_agreement_rule_needs_quorum_and_majority(
    support: int, object_: int, abstain: int, met: bool
) -> None:
    rule = AgreementRule(quorum=3, majority_numerator=2, majority_denominator=3)
    tally = Tally.model_validate({"support": support, "object": object_, "abstain": abstain})

    assert rule.is_met(tally) is met


def test_a_majority_over_one_is_rejected() -> None:
    with pytest.raises(ValidationError, match="must not exceed majority_denominator"):
        AgreementRule(quorum=1, majority_numerator=3, majority_denominator=2)


def _priority(**overrides: Any) -> PriorityAgreed:
    return PriorityAgreed.model_validate(example_of(PriorityAgreed) | overrides)


def test_a_priority_must_meet_its_rule() -> None:
    with pytest.raises(ValidationError, match="does not meet the agreement rule"):
        _priority(
            agreed_by=["partner_a1"],
            tally={"support": 1, "object": 4, "abstain": 0},
        )


def test_a_priority_lists_exactly_its_supporters() -> None:
    with pytest.raises(ValidationError, match="exactly tally.support"):
        _priority(agreed_by=["partner_a1"])


def test_new_event_fills_identity_times_type_and_subject() -> None:
    data = conversation()
    before = datetime.now(UTC)

    draft = new_event(
        ConversationLoggedEvent,
        data=data,
        source="intake",
        subjectversion=1,
        actorid="listener_7Hq2",
        actorrole=ActorRole.COMMUNITY_LISTENER,
        correlationid=str(uuid4()),
    )

    assert draft.type == "ConversationLogged"
    assert draft.dataschema == "schemas/ConversationLogged.v1.json"
    assert draft.subject == str(data.conversation_id)
    assert draft.time == draft.recordedtime and draft.time >= before
    assert draft.time.tzinfo is UTC
    assert not hasattr(draft, "sequence")


def test_new_event_normalises_a_given_time_to_utc() -> None:
    occurred = datetime(2025, 3, 14, 11, 30, tzinfo=timezone(timedelta(hours=1)))

    draft = new_event(
        ConversationLoggedEvent,
        data=conversation(),
        source="intake",
        subjectversion=1,
        actorid="listener_7Hq2",
        actorrole=ActorRole.COMMUNITY_LISTENER,
        correlationid="c-1",
        time=occurred,
    )

    assert draft.time == occurred and draft.time.tzinfo is UTC


def test_new_event_rejects_a_payload_of_another_type() -> None:
    with pytest.raises(ValidationError):
        new_event(  # type: ignore[misc]  # mypy already rejects this call
            InsightDraftedEvent,
            data=conversation(),
            source="insight",
            subjectversion=1,
            actorid="partner_a1",
            actorrole=ActorRole.LIVED_EXPERIENCE_PARTNER,
            correlationid="c-1",
        )


def test_new_event_rejects_a_subject_that_is_not_the_aggregate() -> None:
    with pytest.raises(ValidationError, match="subject must equal data.conversation_id"):
        new_event(
            ConversationLoggedEvent,
            data=conversation(),
            source="intake",
            subject=str(uuid4()),
            subjectversion=1,
            actorid="listener_7Hq2",
            actorrole=ActorRole.COMMUNITY_LISTENER,
            correlationid="c-1",
        )


def test_every_event_type_has_a_topic() -> None:
    assert set(TOPIC_BY_TYPE) == set(EVENT_CLASSES)
    assert TOPIC_BY_TYPE["ConversationLogged"] == CONVERSATIONS
    assert TOPIC_BY_TYPE["ConsentChanged"] == TOPIC_BY_TYPE["ParticipantErased"] == PARTICIPANTS


def test_topics_are_named_source_stream_version() -> None:
    assert len(set(ALL_TOPICS)) == len(ALL_TOPICS) == 11
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\.v[0-9]+", topic) for topic in ALL_TOPICS)
    assert (
        dead_letter_topic("audit") == "audit.deadletter.v1" and "audit.deadletter.v1" in ALL_TOPICS
    )


def test_the_message_key_is_the_subject() -> None:
    data = conversation()
    draft = new_event(
        ConversationLoggedEvent,
        data=data,
        source="intake",
        subjectversion=1,
        actorid="listener_7Hq2",
        actorrole=ActorRole.COMMUNITY_LISTENER,
        correlationid="c-1",
    )

    assert message_key(draft) == str(data.conversation_id).encode("utf-8")
