"""The store's batch preparation: one serialisation per draft, the contracts' chain, version rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from contracts import EventDraft, body_digest, canonical_body, chain_hash, verify_chain
from contracts.chain import GENESIS_HASH, canonical_json
from eventcore.store.batch import Head, links, must_follow, prepare, recorded
from eventcore.store.records import ConcurrencyError
from tests.integration.store_kit import SOURCE, consent_draft, new_subject

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"
CHAIN = ("sequence", "prevhash", "hash")


def example_drafts() -> list[EventDraft[Any]]:
    out: list[EventDraft[Any]] = []
    for path in sorted(EXAMPLES.glob("*.json")):
        envelope = json.loads(path.read_text())
        out.append(EventDraft.model_validate({k: v for k, v in envelope.items() if k not in CHAIN}))
    return out


@pytest.mark.parametrize("draft", example_drafts(), ids=lambda d: d.type)
def test_one_serialisation_gives_the_contracts_canonical_body_and_digest(
        draft: EventDraft[Any]) -> None:
    [row] = prepare(draft.source, [draft])
    dumped = canonical_json(draft.model_dump(mode="json"))  # the way the body was always made
    assert row.text.encode() == canonical_body(draft) == dumped
    assert row.digest == body_digest(draft) == hashlib.sha256(dumped).digest()


def test_the_python_chain_is_the_contracts_chain_and_verifies() -> None:
    subject = new_subject()
    drafts = [consent_draft(subject, v) for v in range(1, 6)]
    rows = prepare(SOURCE, drafts)
    chained = links(Head(0, bytes(32)), rows)
    assert chained[0][1].hex() == GENESIS_HASH
    prev = GENESIS_HASH
    for n, (draft, (sequence, prev_hash, hash_)) in enumerate(zip(drafts, chained, strict=True)):
        assert (sequence, prev_hash.hex()) == (n + 1, prev)
        assert hash_.hex() == chain_hash(prev, sequence, body_digest(draft))
        # The SQL the store used to run: sha256(prev || int8send(seq) || digest).
        assert hash_ == hashlib.sha256(
            bytes.fromhex(prev) + sequence.to_bytes(8, "big", signed=True) + body_digest(draft)
        ).digest()
        prev = hash_.hex()
    # The records give the envelope the relay publishes: the body in its canonical order, then
    # the chain fields in hex.
    records = recorded(rows, chained)
    assert [(r.sequence, r.prevhash, r.hash) for r in records] == [
        (s, p.hex(), h.hex()) for s, p, h in chained]
    for record, draft, (s, p, h) in zip(records, drafts, chained, strict=True):
        envelope = draft.model_dump(mode="json") | {"sequence": s, "prevhash": p.hex(),
                                                     "hash": h.hex()}
        assert record.envelope == envelope
        assert list(record.envelope) == [*sorted(draft.model_dump()), *CHAIN]
    events = [d.sequenced(s, p.hex(), h.hex()) for d, (s, p, h) in zip(drafts, chained, strict=True)]
    assert verify_chain(events) is None
    # From a later head too.
    later = links(Head(41, bytes.fromhex(prev)), rows[:1])
    assert [(s, p.hex(), h.hex()) for s, p, h in later] == [
        (42, prev, chain_hash(prev, 42, body_digest(drafts[0])))]


def test_a_version_needs_its_predecessor_in_the_store_unless_it_is_earlier_in_the_batch() -> None:
    a, b = new_subject(), new_subject()
    rows = prepare(SOURCE, [consent_draft(a, 1), consent_draft(a, 2), consent_draft(b, 3),
                            consent_draft(a, 3), consent_draft(b, 4)])
    assert must_follow(rows) == [False, False, True, False, False]
    # A successor before its predecessor is checked against the store (and will fail there).
    assert must_follow(prepare(SOURCE, [consent_draft(a, 2), consent_draft(a, 1)])) == [True, False]
    with pytest.raises(ConcurrencyError) as raised:
        must_follow(prepare(SOURCE, [consent_draft(a, 2), consent_draft(a, 2)]))
    assert (raised.value.subject, raised.value.version) == (a, 2)


def test_a_draft_from_another_source_is_refused() -> None:
    draft = consent_draft(new_subject(), 1)
    with pytest.raises(ValueError, match="source"):
        prepare("insight", [draft])


def test_the_current_trace_is_stamped_on_drafts_that_carry_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from eventcore.store import batch

    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    calls: list[int] = []

    def current() -> str:
        calls.append(1)
        return traceparent

    monkeypatch.setattr(batch, "current_traceparent", current)
    own = consent_draft(new_subject(), 1).model_copy(
        update={"traceparent": "00-11111111111111111111111111111111-2222222222222222-01"})
    rows = prepare(SOURCE, [consent_draft(new_subject(), 1), own, consent_draft(new_subject(), 1)])
    assert [json.loads(r.text)["traceparent"] for r in rows] == [
        traceparent, own.traceparent, traceparent]
    assert rows[0].draft.traceparent == traceparent
    assert rows[0].digest == body_digest(rows[0].draft)
    assert len(calls) == 1, "read once per append, not once per draft"
