"""Replay verification: an untouched history verifies; every kind of tampering names the first break."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from contracts import body_digest, chain_hash, parse_event, verify_chain
from contracts.envelope import CHAIN_FIELDS
from golden_thread.audit.model import BreakKind, Verification
from golden_thread.audit.scenario import Story, build_story
from golden_thread.audit.synthetic import deliver
from golden_thread.audit.verify import Replay, ReplayOptions

Message = dict[str, Any]


@pytest.fixture(scope="module")
def story() -> Story:
    return build_story(seed=5, conversations=24)


def messages_of(story: Story, seed: int = 1) -> list[Message]:
    return [e.model_dump(mode="json") for e in deliver(story.events, seed=seed)]


def replay(messages: list[Message], **options: Any) -> Verification:
    return Replay(ReplayOptions(**options)).feed_all(json.dumps(m) for m in messages).finish()


def find(messages: list[Message], source: str, sequence: int) -> int:
    return next(i for i, m in enumerate(messages)
                if m["source"] == source and m["sequence"] == sequence)


def rehash(message: Message) -> Message:
    """What a forger who knows the algorithm computes for a message at its claimed position."""
    draft = parse_event(json.dumps(message))
    return {**message, "hash": chain_hash(message["prevhash"], message["sequence"],
                                          body_digest(draft))}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_untouched_history_verifies_whatever_the_partition_interleaving(
    story: Story, seed: int
) -> None:
    result = replay(messages_of(story, seed))
    assert result.verified, result.first_break
    assert result.events == len(story.events)
    assert set(result.sources) == {"intake", "insight", "priority", "feedback"}
    assert set(result.counts_by_type) >= {"ConversationLogged", "InsightDrafted", "PriorityAgreed",
                                          "ActionTaken", "ParticipantNotified",
                                          "ParticipantErased"}
    heads = {s: (v.head.sequence, v.head.hash) for s, v in result.sources.items()}
    last = {e.source: (e.sequence, e.hash) for e in story.events}
    assert heads == last


def test_an_erased_participant_keeps_the_history_verifying(story: Story) -> None:
    assert story.erased is not None
    result = replay(messages_of(story))
    assert result.verified and result.counts_by_type["ParticipantErased"] == 1
    sealed = [m for m in messages_of(story) if m["type"] == "ConversationLogged"
              and m["data"]["participant_id"] == story.erased]
    assert sealed and all(q["ciphertext"] for m in sealed for q in m["data"]["quotes"])


def test_an_altered_payload_is_named_as_the_first_break(story: Story) -> None:
    messages = messages_of(story)
    at = find(messages, "insight", 3)
    messages[at]["data"]["category"] = "community_support_altered"
    result = replay(messages)
    assert not result.verified
    first = result.first_break
    assert first is not None
    assert (first.kind, first.source, first.sequence, first.event_id) == (
        BreakKind.CHAIN, "insight", 3, messages[at]["id"])
    assert "altered" in first.reason
    assert result.breaks_total == 1  # the chain resynchronises: one alteration, one break


def test_a_deleted_event_is_named_as_a_gap(story: Story) -> None:
    messages = messages_of(story)
    deleted = messages.pop(find(messages, "intake", 7))
    result = replay(messages)
    first = result.first_break
    assert first is not None and not result.verified
    assert (first.source, first.sequence) == ("intake", 8)
    assert "expected sequence 7, found 8: an event is missing" in first.reason
    # Whatever cited the deleted conversation no longer resolves either.
    assert any(b.kind is BreakKind.CAUSATION and deleted["id"] in b.reason
               for b in result.breaks) or deleted["type"] != "ConversationLogged"


def test_two_reordered_events_break_at_the_first_of_them(story: Story) -> None:
    messages = messages_of(story)
    a, b = find(messages, "intake", 4), find(messages, "intake", 5)
    chain_a = {k: messages[a][k] for k in CHAIN_FIELDS}
    chain_b = {k: messages[b][k] for k in CHAIN_FIELDS}
    messages[a], messages[b] = {**messages[b], **chain_a}, {**messages[a], **chain_b}
    first = replay(messages).first_break
    assert first is not None
    assert (first.source, first.sequence, first.event_id) == ("intake", 4, messages[a]["id"])


def test_swapped_sequence_numbers_break_at_the_earlier_position(story: Story) -> None:
    messages = messages_of(story)
    a, b = find(messages, "priority", 2), find(messages, "priority", 3)
    messages[a]["sequence"], messages[b]["sequence"] = 3, 2
    first = replay(messages).first_break
    assert first is not None
    assert (first.source, first.sequence, first.event_id) == ("priority", 2, messages[b]["id"])
    assert "prevhash" in first.reason


def test_a_forged_event_at_a_taken_position_is_named(story: Story) -> None:
    messages = messages_of(story)
    genuine = messages[find(messages, "insight", 2)]
    forged = rehash({**genuine, "id": str(uuid4()),
                     "data": {**genuine["data"], "statement": "A forged insight."}})
    messages.append(forged)  # appended to the log after the genuine one
    first = replay(messages).first_break
    assert first is not None
    assert (first.kind, first.source, first.sequence, first.event_id) == (
        BreakKind.CONFLICT, "insight", 2, forged["id"])


def test_a_forged_event_inserted_into_a_chain_is_named(story: Story) -> None:
    messages = messages_of(story)
    template = messages[find(messages, "feedback", 2)]
    later = [m for m in messages if m["source"] == "feedback" and m["sequence"] >= 2]
    for m in later:  # the forger renumbers what follows, but cannot re-link it without a trace
        m["sequence"] += 1
    forged = rehash({**template, "id": str(uuid4()), "sequence": 2})
    messages.insert(find(messages, "feedback", 1) + 1, forged)
    first = replay(messages).first_break
    assert first is not None and first.source == "feedback" and first.sequence == 3


def test_an_exact_redelivery_is_a_duplicate_not_a_break(story: Story) -> None:
    messages = messages_of(story)
    resent = [dict(m) for m in messages[10:30]]  # a relay re-sending a batch after a crash
    result = replay(messages[:40] + resent + messages[40:] + resent[:3])
    assert result.verified, result.first_break
    assert result.duplicates == len(resent) + 3


def test_a_redelivered_copy_with_altered_contents_is_a_break(story: Story) -> None:
    messages = messages_of(story)
    copy = json.loads(json.dumps(messages[5]))
    copy["actorid"] = "someone_else"
    result = replay(messages + [copy])
    assert result.first_break is not None
    assert result.first_break.event_id == copy["id"]
    assert result.first_break.kind is BreakKind.CONFLICT


def test_a_causation_id_that_names_nothing_is_a_break(story: Story) -> None:
    messages = messages_of(story)
    at = find(messages, "priority", 1)
    messages[at]["causationids"] = [str(uuid4())]
    messages[at] = rehash(messages[at])
    # Every later event of the source now fails to link, so re-chain them as a forger would.
    _rechain(messages, "priority", 1)
    result = replay(messages)
    assert [b.kind for b in result.breaks] == [BreakKind.CAUSATION]
    assert result.first_break is not None and result.first_break.sequence == 1


def test_a_notification_that_leads_back_to_no_conversation_is_a_break(story: Story) -> None:
    messages = messages_of(story)
    at = find(messages, "feedback", 1)
    messages[at]["data"]["chain"]["conversation_ids"] = [str(uuid4())]
    messages[at]["causationids"] = messages[at]["causationids"][:1]
    messages[at] = rehash(messages[at])
    _rechain(messages, "feedback", 1)
    result = replay(messages)
    assert [b.kind for b in result.breaks] == [BreakKind.NOTIFICATION]
    assert "leads back to no ConversationLogged" in result.breaks[0].reason


def test_a_message_that_is_not_an_event_is_a_break(story: Story) -> None:
    messages = [json.dumps(m) for m in messages_of(story)] + ['{"type": "Nonsense"}', "not json"]
    result = Replay().feed_all(messages).finish()
    assert result.breaks_total == 2 and {b.kind for b in result.breaks} == {BreakKind.CONTRACT}


def test_as_of_shows_the_history_as_it_stood_then(story: Story) -> None:
    cut = story.priorities[0].recordedtime - timedelta(seconds=1)
    result = replay(messages_of(story), as_of=cut)
    assert result.verified, result.first_break
    assert result.events == sum(e.recordedtime <= cut for e in story.events)
    assert "PriorityAgreed" not in result.counts_by_type
    assert result.sources["priority"].after_as_of > 0


def test_a_bounded_disorder_window_still_names_a_gap_and_holds_little(story: Story) -> None:
    natural = replay(messages_of(story)).max_buffered  # the interleaving's own disorder
    messages = messages_of(story)
    messages.pop(find(messages, "intake", 2))
    result = replay(messages, max_buffered=natural + 2)
    assert result.first_break is not None
    assert (result.first_break.sequence, result.first_break.kind) == (3, BreakKind.CHAIN)
    assert result.max_buffered <= natural + 3 < len(messages) // 2
    assert BreakKind.CONFLICT not in {b.kind for b in result.breaks}  # no false positives


def test_breaks_agree_with_the_contracts_chain_verifier(story: Story) -> None:
    for tamper in (_alter, _drop, _swap):
        messages = sorted(messages_of(story), key=lambda m: (m["source"], m["sequence"]))
        intake = [m for m in messages if m["source"] == "intake"]
        tamper(intake)
        expected = verify_chain(parse_event(json.dumps(m)) for m in intake)
        found = replay(intake).first_break
        assert expected is not None and found is not None
        assert (found.sequence, found.event_id, found.reason) == (
            expected.sequence, str(expected.event_id), expected.reason)


def _alter(ms: list[Message]) -> None:
    ms[3]["data"]["place"] = "Elsewhere"


def _drop(ms: list[Message]) -> None:
    del ms[4]


def _swap(ms: list[Message]) -> None:
    ms[2]["prevhash"], ms[3]["prevhash"] = ms[3]["prevhash"], ms[2]["prevhash"]


def _rechain(messages: list[Message], source: str, after: int) -> None:
    ordered = sorted((m for m in messages if m["source"] == source and m["sequence"] > after),
                     key=lambda m: m["sequence"])
    prev = messages[find(messages, source, after)]["hash"]
    for m in ordered:
        fixed = rehash({**m, "prevhash": prev})
        messages[messages.index(m)] = fixed
        prev = fixed["hash"]


Tamper = Callable[[list[Message]], None]
