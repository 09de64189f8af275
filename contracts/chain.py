"""The per-source hash chain that makes the event history tamper-evident.

Each source numbers its events 1, 2, 3... without gaps and links each to the previous one:

    hash = sha256(bytes.fromhex(prevhash) + sequence (8 bytes, big-endian, signed)
                  + sha256(canonical body))

The canonical body is the event without its chain fields, as sorted, compact UTF-8 JSON. The
event store computes the same in SQL, so this algorithm must not change within a version.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from contracts.canonical import one_pass
from contracts.envelope import CHAIN_FIELDS, Envelope, EventContext

_orjson: Any
try:  # optional accelerator; identical output (tests/contract check it)
    import orjson as _orjson
except ImportError:  # pragma: no cover - contracts stay usable with the standard library alone
    _orjson = None

GENESIS_HASH: Final = "0" * 64
#: Check every one-pass canonical body against the dump (`contracts.canonical`): for tests.
_CROSS_CHECK: Final = os.environ.get("GT_CANONICAL_CROSS_CHECK") == "1"
_CHAIN_FIELD_SET: Final = frozenset(CHAIN_FIELDS)


def canonical_json(body: Mapping[str, Any]) -> bytes:
    """Sorted, compact UTF-8 JSON. orjson, where installed, gives the very same bytes faster."""
    if _orjson is not None:
        return bytes(_orjson.dumps(body, option=_orjson.OPT_SORT_KEYS))
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def canonical_body(event: EventContext) -> bytes:
    """The bytes the chain hashes: every attribute and the payload, but not the chain fields.

    Works for a draft and for the sequenced event alike, giving the same bytes. Written in one
    pass from the event's attributes where that gives the dump's very bytes
    (`contracts.canonical`), else from the dump.
    """
    written = one_pass(event, _CHAIN_FIELD_SET)
    if written is not None and not _CROSS_CHECK:
        return written
    dumped = canonical_json(event.model_dump(mode="json", exclude=set(_CHAIN_FIELD_SET)))
    if written is not None and written != dumped:  # names the class, never the values
        raise AssertionError(f"canonical body of a {type(event).__name__}: the one pass and "
                             "the dump differ")
    return dumped


def body_digest(event: EventContext) -> bytes:
    return hashlib.sha256(canonical_body(event)).digest()


def raw_body_digest(envelope: Mapping[str, Any]) -> bytes:
    """The digest of an event as received (a decoded JSON object), without re-validating it.

    Equal to `body_digest` of the parsed event whenever the sender wrote every field (as the
    relay does); a verifier falls back to `body_digest` when they differ.
    """
    body = {k: v for k, v in envelope.items() if k not in _CHAIN_FIELD_SET}
    return hashlib.sha256(canonical_json(body)).digest()


def chained(body: bytes, sequence: int, prevhash_hex: str, hash_hex: str) -> bytes:
    """The message for a stored event: its body text (the canonical body, as the store keeps
    it) with the chain fields added last: the same bytes as `orjson.dumps` of the body's dict
    followed by them, as the relay sends it."""
    chain = b'"sequence":%d,"prevhash":"%s","hash":"%s"}' % (
        sequence, prevhash_hex.encode(), hash_hex.encode())
    if body == b"{}":
        return b"{" + chain
    if body[:1] == b"{" and body[-1:] == b"}":
        return body[:-1] + b"," + chain
    return body  # not an object: passed on for the contract check to reject


def chain_hash(prev_hash_hex: str, sequence: int, digest: bytes) -> str:
    link = bytes.fromhex(prev_hash_hex) + sequence.to_bytes(8, "big", signed=True) + digest
    return hashlib.sha256(link).hexdigest()


def expected_hash(event: Envelope[Any]) -> str:
    """The hash an event must carry, given its own prevhash, sequence and contents."""
    return chain_hash(event.prevhash, event.sequence, body_digest(event))


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last verified event of a source; (0, GENESIS_HASH) before its first event."""

    sequence: int = 0
    hash: str = GENESIS_HASH


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place a source's chain does not hold. Never carries event contents."""

    source: str
    sequence: int
    event_id: UUID
    reason: str

    def __str__(self) -> str:
        return f"{self.source} #{self.sequence} (event {self.event_id}): {self.reason}"


class ChainVerifier:
    """Checks events one at a time, holding only each source's head (streaming replay).

    Events of each source must arrive in the source's sequence order; sources may interleave.
    """

    def __init__(self, heads: Mapping[str, ChainHead] | None = None) -> None:
        self._heads: dict[str, ChainHead] = dict(heads or {})

    @property
    def heads(self) -> Mapping[str, ChainHead]:
        """Each source's last verified event, to compare with a trusted anchor."""
        return dict(self._heads)

    def check(self, event: Envelope[Any], digest: bytes | None = None) -> ChainBreak | None:
        """Verify the next event; on success it becomes its source's head.

        `digest` may carry `raw_body_digest` of the received message, which saves re-dumping it.
        """
        head = self._heads.get(event.source, ChainHead())
        reason = _break_reason(head, event, digest)
        if reason is not None:
            return ChainBreak(event.source, event.sequence, event.id, reason)
        self._heads[event.source] = ChainHead(event.sequence, event.hash)
        return None


def _break_reason(head: ChainHead, event: Envelope[Any], digest: bytes | None = None) -> str | None:
    expected = head.sequence + 1
    if event.sequence > expected:
        return f"expected sequence {expected}, found {event.sequence}: an event is missing"
    if event.sequence < expected:
        return (
            f"expected sequence {expected}, found {event.sequence}: "
            "an event is repeated or out of order"
        )
    if event.prevhash != head.hash:
        return f"prevhash does not match the hash of sequence {head.sequence}"
    if digest is not None and event.hash == chain_hash(event.prevhash, event.sequence, digest):
        return None
    if event.hash != expected_hash(event):
        return "hash does not match the event's contents: it was altered"
    return None


def verify_chain(
    events: Iterable[Envelope[Any]], *, heads: Mapping[str, ChainHead] | None = None
) -> ChainBreak | None:
    """Return the first break in any source's chain, or None if every chain holds.

    `heads` resumes from previously verified positions; by default every source starts at 1.
    """
    verifier = ChainVerifier(heads)
    for event in events:
        found = verifier.check(event)
        if found is not None:
            return found
    return None
