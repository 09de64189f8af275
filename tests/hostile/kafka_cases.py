"""Hostile Kafka messages for one topic: raw bytes, broken JSON, events with fields missing,
unknown, of the wrong type, of an unsupported schema version, with control characters, huge or
nested too deep. Every one breaks the contract, so every consumer of the topic must dead-letter it
(with the reason in `dlq_reason`) and carry on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, get_args
from uuid import uuid4

from hypothesis import strategies as st
from pydantic import BaseModel

from contracts import EVENT_CLASSES
from contracts.samples import example_event
from contracts.topics import ACTIONS, CONVERSATIONS, INSIGHTS, PARTICIPANTS, PRIORITIES
from tests.hostile import strategies as hs

#: Who consumes each topic (and so must dead-letter its hostile messages).
CONSUMERS: dict[str, tuple[str, ...]] = {
    CONVERSATIONS: ("insight", "feedback"),
    PARTICIPANTS: ("insight", "feedback"),
    INSIGHTS: ("priority", "feedback"),
    PRIORITIES: ("feedback",),
    ACTIONS: ("priority", "feedback"),
}
TYPES: dict[str, tuple[str, ...]] = {
    CONVERSATIONS: ("ConversationLogged",),
    PARTICIPANTS: ("ParticipantErased", "ConsentChanged"),
    INSIGHTS: ("InsightDrafted",),
    PRIORITIES: ("PriorityAgreed",),
    ACTIONS: ("ActionTaken",),
}
#: Free-form strings whose content the contract does not constrain and no consumer stores.
UNCONSTRAINED = {"tracestate", "dataschema", "key_id", "ciphertext"}
#: Integers the consumers store in bigint / integer columns.
BOUNDED_INTS = {("sequence",): 2**63, ("subjectversion",): 2**31}
#: Larger than any message the contract accepts (1 MiB), smaller than the broker takes.
TOO_LARGE = 1024 * 1024 + 512


@dataclass
class Hostile:
    kind: str
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    key: bytes = field(default_factory=lambda: f"hostile-{uuid4().hex}".encode())
    #: Consumers whose own rules refuse it (a contract-valid message); None: every consumer.
    refused_by: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        shown = self.value if self.value is None or len(self.value) < 400 else (
            self.value[:400] + b"...")
        return f"Hostile({self.kind}, {shown!r} ({len(self.value or b'')} bytes), {self.headers})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def valid_event(type_name: str) -> dict[str, Any]:
    """A well-formed event of this type (as JSON), with a fresh id."""
    event: dict[str, Any] = example_event(EVENT_CLASSES[type_name]).model_dump(mode="json")
    event["id"] = str(uuid4())
    return event


def required_paths(model: type[BaseModel], tree: Any, prefix: hs.Path = ()) -> list[hs.Path]:
    """Paths (present in the tree) of fields the model requires, nested models included."""
    out: list[hs.Path] = []
    for name, info in model.model_fields.items():
        if not isinstance(tree, dict) or name not in tree:
            continue
        if info.is_required():
            out.append((*prefix, name))
        for candidate in (info.annotation, *get_args(info.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                out.extend(required_paths(candidate, tree[name], (*prefix, name)))
    return out


def _bytes(tree: Any) -> bytes:
    return hs.dumps(tree)


# Headers the services and tools read carry hostile text (UTF-8: other tests' readers of these
# shared topics decode them); a header of no meaning carries any bytes at all.
_READ_HEADERS = st.tuples(
    st.sampled_from(["ce_type", "ce_id", "ce_source", "traceparent", "content-type"]),
    hs.hostile_text.map(lambda t: t.encode("utf-8", "replace")))
_OTHER_HEADERS = st.tuples(
    st.just(f"x-{hs.MARK}"),
    st.one_of(st.binary(max_size=40), hs.hostile_text.map(
        lambda t: t.encode("utf-8", "surrogatepass"))))
_HEADERS = st.lists(st.one_of(_READ_HEADERS, _OTHER_HEADERS), max_size=3)


@st.composite
def hostile_message(draw: st.DrawFn, topic: str) -> Hostile:
    type_name = draw(st.sampled_from(TYPES[topic]))
    event = valid_event(type_name)
    kind = draw(st.sampled_from([
        "raw", "malformed", "toplevel", "missing", "unknown", "wrong_type", "schemaversion",
        "type", "dirty_text", "big_int", "nesting", "subject", "huge_text"]))
    value = _MAKERS[kind](draw, event, type_name)
    return Hostile(kind, value, draw(_HEADERS))


def _raw(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    return draw(st.binary(max_size=300))


def _malformed(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    return draw(hs.malformed_json(_bytes(event)))


def _toplevel(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    return json.dumps(draw(st.sampled_from(
        [[event], [], 1, hs.MARK, None, True, {"event": event}]))).encode()


def _missing(draw: st.DrawFn, event: dict[str, Any], type_name: str) -> bytes:
    paths = required_paths(EVENT_CLASSES[type_name], event) + [("type",)]
    return _bytes(hs.removed(event, draw(st.sampled_from(paths))))


def _unknown(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    objects = [()] + [p for p in hs.paths(event) if isinstance(hs.get(event, p), dict)]
    where = draw(st.sampled_from(objects))
    return _bytes(hs.added(event, where, draw(hs.hostile_key), hs.MARK))


def _wrong_type(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    where = draw(st.sampled_from(list(hs.paths(event))))
    return _bytes(hs.replaced(event, where, draw(hs.wrong_kind(hs.get(event, where)))))


def _schemaversion(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    version = draw(st.sampled_from([0, 2, 3, -1, 10**30, None, hs.MARK, [1], {"v": 1}, "2"]))
    return _bytes({**event, "schemaversion": version})


def _type(draw: st.DrawFn, event: dict[str, Any], type_name: str) -> bytes:
    others = sorted(set(EVENT_CLASSES) - {type_name})
    return _bytes({**event, "type": draw(st.sampled_from([hs.MARK, 42, None, "", *others]))})


def _dirty_text(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    leaves = [p for p in hs.paths(event) if isinstance(hs.get(event, p), str)
              and p[-1] not in UNCONSTRAINED]
    text = draw(st.one_of(hs.control_text, hs.surrogate_text).filter(hs.is_dirty))
    return _bytes(hs.replaced(event, draw(st.sampled_from(leaves)), text))


def _big_int(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    where, limit = draw(st.sampled_from(sorted(BOUNDED_INTS.items())))
    value = draw(st.sampled_from([limit, limit * 2, 10**30, -(10**30)]))
    return _bytes(hs.replaced(event, where, value))


def _nesting(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    depth = draw(st.sampled_from([300, 5000, 100_000]))
    if draw(st.booleans()):
        return hs.nested(depth).encode()
    placeholder = "\x01PLACEHOLDER\x01"
    where = draw(st.sampled_from(list(hs.paths(event))))
    text = json.dumps(hs.replaced(event, where, placeholder))
    return text.replace(json.dumps(placeholder), hs.nested(depth)).encode()


def _subject(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    return _bytes({**event, "subject": str(uuid4()) + draw(st.sampled_from(["", hs.MARK]))})


def _huge_text(draw: st.DrawFn, event: dict[str, Any], _: str) -> bytes:
    leaves = [p for p in hs.paths(event) if isinstance(hs.get(event, p), str)
              and p[-1] not in UNCONSTRAINED]
    size = draw(st.sampled_from([4_001, 70_000, 600_000]))
    return _bytes(hs.replaced(event, draw(st.sampled_from(leaves)), hs.MARK + "A" * size))


_MAKERS: dict[str, Any] = {
    "raw": _raw, "malformed": _malformed, "toplevel": _toplevel, "missing": _missing,
    "unknown": _unknown, "wrong_type": _wrong_type, "schemaversion": _schemaversion,
    "type": _type, "dirty_text": _dirty_text, "big_int": _big_int, "nesting": _nesting,
    "subject": _subject, "huge_text": _huge_text,
}


def explicit_messages(topic: str) -> list[Hostile]:
    """Always sent: a tombstone, an empty value, a message over the contract's size limit,
    NUL in every string the contract constrains, an unsupported schema version, and a header
    that is not UTF-8."""
    type_name = TYPES[topic][0]
    event = valid_event(type_name)
    out = [Hostile("tombstone", None), Hostile("empty", b""),
           Hostile("too_large", b'{"type": "' + b"A" * TOO_LARGE + b'"}'),
           Hostile("schemaversion", _bytes({**event, "schemaversion": 2})),
           Hostile("header_not_utf8", _bytes({**event, "schemaversion": 0}),
                   [(f"x-{hs.MARK}", b"\xff\xfe\xed\xa0\x80")])]
    for where in hs.paths(event):
        if isinstance(hs.get(event, where), str) and where[-1] not in UNCONSTRAINED:
            out.append(Hostile("dirty_text", _bytes(hs.replaced(event, where,
                                                                "\x00" + hs.MARK))))
    return out


def refused_by_rules(topic: str) -> list[Hostile]:
    """Contract-valid events a consumer's own rules refuse: conversations and erasures forged by a
    source insight and feedback do not trust, actions citing priorities that were never agreed, and actions
    claiming to be the priority service's own without being in its store."""
    out = []
    if topic in (CONVERSATIONS, PARTICIPANTS):
        event = valid_event(TYPES[topic][0])
        out.append(Hostile("forged_source", _bytes({**event, "source": "mallory"}),
                           refused_by=("insight", "feedback")))
    if topic == ACTIONS:
        event = valid_event("ActionTaken")
        event["data"]["action_id"] = event["subject"] = str(uuid4())
        out.append(Hostile("unagreed_priority", _bytes({**event, "source": "trust.hostile"}),
                           refused_by=("priority",)))
        out.append(Hostile("claims_priority", _bytes({**event, "id": str(uuid4()),
                                                      "source": "priority"}),
                           refused_by=("priority",)))
    return out
