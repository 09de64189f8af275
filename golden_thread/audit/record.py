"""One message checked on its own: contract, contents against the stated hash, and the compact
facts the replay keeps. Pure and independent of every other message, so it can run in worker
processes (`parallel`) while the parent puts the records in order and folds them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from orjson import OPT_SORT_KEYS
from orjson import dumps as json_dumps
from orjson import loads as json_loads

from contracts.chain import expected_hash
from contracts.envelope import CHAIN_FIELDS, Envelope
from contracts.events import (
    ActionTaken,
    ConversationLogged,
    InsightDrafted,
    ParticipantErased,
    ParticipantNotified,
    PriorityAgreed,
)
from contracts.problems import ContractError
from contracts.registry import parse_event
from golden_thread.audit.model import AuditBreak, contract_break
from golden_thread.audit.nodes import EQUITY_DIMENSIONS, Key, key_of

_CHAIN_FIELDS = tuple(CHAIN_FIELDS)
#: How `str(UUID)` writes an id: such a causation id is shown from its key.
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
#: Payload kinds of a record (`Rec.kind`), and the event type of each.
CONVERSATION, INSIGHT, PRIORITY, ACTION, NOTIFICATION, ERASED, CONSENT = range(7)
TYPE_NAMES = ("ConversationLogged", "InsightDrafted", "PriorityAgreed", "ActionTaken",
              "ParticipantNotified", "ParticipantErased", "ConsentChanged")


class Rec(NamedTuple):
    """What the replay needs of one event; ids are `UUID.int`, times epoch seconds.

    Travels between processes as a plain tuple (`parse_batch`, `as_rec`): a named tuple
    pickles three times slower.
    """

    id: int
    source: str
    sequence: int
    prevhash: bytes
    hash: bytes
    #: The stated hash is the one its prevhash, sequence and contents give.
    intact: bool
    #: Recorded after the replay's as-of moment.
    late: bool
    recorded: float
    kind: int
    #: `key_of` each causation id, and the ids as written when one is not in canonical form.
    causes: tuple[Key, ...]
    cited: tuple[str, ...]
    #: The payload's compact facts, by kind (see `_payload`).
    data: tuple[Any, ...]

    @property
    def type(self) -> str:
        return TYPE_NAMES[self.kind]


def as_rec(values: tuple[Any, ...]) -> Rec:
    return tuple.__new__(Rec, values)


def parse_message(raw: bytes | str, as_of: datetime | None = None) -> Rec | AuditBreak:
    """Validate one raw message against the contracts and reduce it to a record."""
    try:
        event = parse_event(raw)
    except ContractError as exc:
        return contract_break(raw, exc)
    # The digest of the message as received spares re-dumping the parsed event to hash it:
    # `contracts.chain.raw_body_digest`, popping the chain fields from a dict of our own.
    body = json_loads(raw)
    for name in _CHAIN_FIELDS:
        body.pop(name, None)
    return record_of(event, hashlib.sha256(json_dumps(body, option=OPT_SORT_KEYS)).digest(),
                     as_of)


def record_of(event: Envelope[Any], digest: bytes | None, as_of: datetime | None) -> Rec:
    prevhash, stated = bytes.fromhex(event.prevhash), bytes.fromhex(event.hash)
    sequence = event.sequence
    # contracts.chain.chain_hash, on bytes; when the digest of the message as received does
    # not give the stated hash, the parsed event's own canonical body decides.
    intact = (digest is not None and stated == hashlib.sha256(
        prevhash + sequence.to_bytes(8, "big", signed=True) + digest).digest()) or (
        event.hash == expected_hash(event))
    kind, data = _payload(event.data, event.time.timestamp())
    recorded = event.recordedtime
    cited = event.causationids
    causes = tuple(key_of(c) for c in cited)
    canonical = all(isinstance(k, str) or _CANONICAL.match(c)
                    for k, c in zip(causes, cited, strict=True))
    return as_rec((event.id.int, event.source, sequence, prevhash, stated, intact,
                   as_of is not None and recorded > as_of, recorded.timestamp(), kind, causes,
                   () if canonical else cited, data))


_equity_of = attrgetter(*EQUITY_DIMENSIONS)


def _payload(data: Any, time: float) -> tuple[int, tuple[Any, ...]]:
    if isinstance(data, ConversationLogged):
        equity = data.equity
        given = None if equity is None else _equity_of(equity)
        return CONVERSATION, (data.conversation_id.int, data.participant_id, given,
                              data.categories, data.place, time)
    if isinstance(data, InsightDrafted):
        return INSIGHT, (data.insight_id.int, tuple(c.int for c in data.conversation_ids),
                         data.category, data.revision, time)
    if isinstance(data, PriorityAgreed):
        return PRIORITY, (data.priority_id.int, tuple(i.int for i in data.insight_ids), time)
    if isinstance(data, ActionTaken):
        return ACTION, (data.action_id.int, tuple(p.int for p in data.priority_ids), time,
                        data.status, data.place, data.service, data.framework)
    if isinstance(data, ParticipantNotified):
        return NOTIFICATION, (data.notification_id.int, data.participant_id,
                              data.action_id.int,
                              tuple(c.int for c in data.chain.conversation_ids), data.channel,
                              time)
    if isinstance(data, ParticipantErased):
        return ERASED, (str(data.participant_id),)
    return CONSENT, (str(data.participant_id),)


def parse_batch(raws: list[bytes | str],
                as_of: datetime | None) -> list[tuple[Any, ...] | AuditBreak]:
    """`parse_message` of each, records as plain tuples (for a worker process to send)."""
    return [r if isinstance(r, AuditBreak) else tuple(r)
            for r in (parse_message(raw, as_of) for raw in raws)]
