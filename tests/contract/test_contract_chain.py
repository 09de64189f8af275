"""The hash chain names the first altered, missing, reordered or forged event of a source."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from contracts import (
    GENESIS_HASH,
    ChainHead,
    ChainVerifier,
    Envelope,
    body_digest,
    canonical_body,
    chain_hash,
    expected_hash,
    parse_event,
    verify_chain,
)
from contracts.chain import chained

from .builders import conversation_draft, sequence_all

Chain = Callable[..., list[Envelope[Any]]]


def test_chain_hash_follows_the_published_algorithm() -> None:
    digest = hashlib.sha256(b"body").digest()
    link = bytes(32) + (1).to_bytes(8, "big", signed=True) + digest

    assert chain_hash(GENESIS_HASH, 1, digest) == hashlib.sha256(link).hexdigest()


def test_canonical_body_is_sorted_compact_utf8_without_chain_fields() -> None:
    draft = conversation_draft()
    body = canonical_body(draft).decode("utf-8")

    assert body.startswith('{"actorid":')
    assert ", " not in body and ": " not in body
    assert '"sequence"' not in body and '"prevhash"' not in body and '"hash"' not in body
    assert "café" in body  # not escaped


def test_a_draft_and_its_sequenced_event_have_the_same_canonical_body() -> None:
    draft = conversation_draft()

    event = draft.sequenced(1, GENESIS_HASH, chain_hash(GENESIS_HASH, 1, body_digest(draft)))

    assert canonical_body(event) == canonical_body(draft)
    assert canonical_body(parse_event(event.model_dump_json())) == canonical_body(draft)
    assert expected_hash(event) == event.hash


def test_an_intact_chain_verifies(make_chain: Chain) -> None:
    assert verify_chain(make_chain(5)) is None


def test_an_altered_payload_is_the_first_break(make_chain: Chain) -> None:
    events = make_chain(5)
    altered = events[2].data.model_copy(update={"summary": "Something else entirely."})
    events[2] = events[2].model_copy(update={"data": altered})

    found = verify_chain(events)

    assert found is not None
    assert (found.source, found.sequence, found.event_id) == ("intake", 3, events[2].id)
    assert "altered" in found.reason


def test_a_deleted_event_is_named_at_the_gap(make_chain: Chain) -> None:
    events = make_chain(5)
    del events[1]

    found = verify_chain(events)

    assert found is not None
    assert (found.sequence, found.event_id) == (3, events[1].id)
    assert "expected sequence 2, found 3" in found.reason


def test_swapped_events_are_named_at_the_first_out_of_place(make_chain: Chain) -> None:
    events = make_chain(5)
    events[2], events[3] = events[3], events[2]

    found = verify_chain(events)

    assert found is not None
    assert (found.sequence, found.event_id) == (4, events[2].id)


def test_a_forged_event_with_a_wrong_hash_is_named(make_chain: Chain) -> None:
    events = make_chain(4)
    forged = conversation_draft().sequenced(3, events[1].hash, "f" * 64)
    events.insert(2, forged)

    found = verify_chain(events)

    assert found is not None and found.event_id == forged.id
    assert "altered" in found.reason


def test_a_forged_event_with_a_valid_hash_breaks_at_the_next_real_event(make_chain: Chain) -> None:
    events = make_chain(4)
    (forged,) = sequence_all([conversation_draft()], start=3, prevhash=events[1].hash)
    events.insert(2, forged)

    found = verify_chain(events)

    assert found is not None
    assert (found.sequence, found.event_id) == (3, events[3].id)
    assert "repeated or out of order" in found.reason


def test_a_prevhash_that_skips_its_predecessor_is_named(make_chain: Chain) -> None:
    events = make_chain(3)
    (relinked,) = sequence_all([conversation_draft()], start=3, prevhash=events[0].hash)
    events[2] = relinked

    found = verify_chain(events)

    assert found is not None and found.sequence == 3
    assert "prevhash" in found.reason


def test_sources_interleave_and_are_checked_separately(make_chain: Chain) -> None:
    intake, partner = make_chain(3, "intake"), make_chain(3, "nhs.trust-42")
    interleaved = [event for pair in zip(intake, partner, strict=True) for event in pair]
    assert verify_chain(interleaved) is None

    del interleaved[3]  # partner's second event

    found = verify_chain(interleaved)
    assert found is not None and (found.source, found.sequence) == ("nhs.trust-42", 3)


def test_verification_resumes_from_a_trusted_head(make_chain: Chain) -> None:
    events = make_chain(6)
    verifier = ChainVerifier()
    for event in events[:3]:
        assert verifier.check(event) is None
    head = verifier.heads["intake"]

    assert head == ChainHead(3, events[2].hash)
    assert verify_chain(events[3:], heads={"intake": head}) is None
    assert verify_chain(events[3:]) is not None


def test_a_break_never_carries_event_contents(make_chain: Chain) -> None:
    events = make_chain(2)
    secret = "jane.doe@example.org"
    altered = events[1].data.model_copy(update={"summary": secret})
    events[1] = events[1].model_copy(update={"data": altered})

    found = verify_chain(events)

    assert found is not None and secret not in str(found)


def test_canonical_json_is_byte_identical_to_the_standard_library_form() -> None:
    import json

    from contracts.chain import canonical_json

    tricky = ["plain", "é ü 中文 🙂", "\x00\x01\x1f\x7f", 'quote" back\\slash /', "\u2028\u2029",
              "\t\n\r\b\f", "<script>&'", ""]
    for text in tricky:
        body = {"b": text, "a": [1, None, True, {"z": text, "y": -5}], "c": 12345678901234}
        reference = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical_json(body) == reference.encode("utf-8")


def test_a_stored_event_travels_as_its_canonical_body_then_its_chain_fields() -> None:
    """The store keeps the canonical body verbatim and the relay sends it with the chain fields
    added last: `chained` lays a stored row out exactly so (the audit's store source)."""
    draft = conversation_draft()
    body = canonical_body(draft)
    event = draft.sequenced(7, GENESIS_HASH, chain_hash(GENESIS_HASH, 7, body_digest(draft)))
    as_relay_sends = orjson.dumps({**orjson.loads(body), "sequence": 7,
                                   "prevhash": event.prevhash, "hash": event.hash})

    message = chained(body, 7, event.prevhash, event.hash)

    assert message == as_relay_sends
    assert parse_event(message) == event
    assert chained(b"{}", 1, GENESIS_HASH, GENESIS_HASH) == (
        b'{"sequence":1,"prevhash":"%s","hash":"%s"}' % ((GENESIS_HASH.encode(),) * 2))
    assert chained(b"[]", 1, GENESIS_HASH, GENESIS_HASH) == b"[]"  # for the contract to reject
