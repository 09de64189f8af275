"""The canonical body written in one pass (`contracts.canonical`) is the dump's, byte for byte.

The chain hashes these bytes and the store keeps them, so the two ways must never differ: every
contract class must be plain (the quick way taken), every event type and generated values must
give the dump's bytes, and whatever is not plain, or not written alike, must fall back to the
dump (most cases here came from a review that went looking for a difference).
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from contracts import (
    ActorRole,
    ConversationLoggedEvent,
    EventDraft,
    canonical_body,
    chain,
    new_event,
)
from contracts.canonical import one_pass, plain_check
from contracts.chain import canonical_json
from contracts.envelope import CHAIN_FIELDS
from contracts.events import EVENT_CLASSES
from contracts.fields import example_of
from golden_thread.audit.scenario import build_story

from ..contract.builders import conversation
from .canonical_models import (
    Leaf,
    Moment,
    NoOffset,
    SubLeaf,
    WithAlias,
    WithComputed,
    WithEncoders,
    WithExtra,
    WithFloat,
    WithHundred,
    WithLabel,
    WithLeaf,
    WithOwnDump,
    WithPlainSerializer,
    WithSerializer,
    WithSet,
    WithTemporal,
    WithTypeChangingValidator,
    WithValidator,
    cached,
)


def dumped(event: BaseModel) -> bytes:
    """The canonical body the way it was always made: the dump, then sorted compact JSON."""
    return canonical_json(event.model_dump(mode="json", exclude=set(CHAIN_FIELDS)))


def every_model(cls: type[BaseModel]) -> set[type[BaseModel]]:
    out = {cls}
    for info in cls.model_fields.values():
        stack: list[Any] = [info.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in out:
                out |= every_model(tp)
            stack.extend(getattr(tp, "__args__", ()))
    return out


_TOP: list[type[BaseModel]] = [*EVENT_CLASSES.values(), EventDraft]
CONTRACT_CLASSES = sorted({m for c in _TOP for m in every_model(c)}, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", CONTRACT_CLASSES, ids=lambda c: c.__name__)
def test_every_contract_class_is_written_in_one_pass(cls: type[BaseModel]) -> None:
    """A contract change that makes a class not plain still writes the right bytes (the dump's
    way), but twice as slowly: this test names the class, so the change is a choice."""
    assert plain_check(cls) is not None


def test_every_event_type_of_a_story_gives_the_dumps_bytes() -> None:
    story = build_story(seed=7, conversations=24)
    assert {type(e) for e in story.events} == set(EVENT_CLASSES.values())
    for event in story.events:
        written = one_pass(event, CHAIN_FIELDS)
        assert written is not None and written == dumped(event), type(event).__name__
        draft: EventDraft[Any] = EventDraft.model_validate(
            {k: v for k, v in event.__dict__.items() if k not in CHAIN_FIELDS})
        assert one_pass(draft) == dumped(draft) == written


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=(
    *map(chr, range(0x09)), "\x0b", "\x0c", *map(chr, range(0x0e, 0x20)),
    *map(chr, range(0x7f, 0xa0)))), min_size=1, max_size=40)
_ZONES = st.sampled_from([UTC, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30)),
                          timezone(timedelta(hours=-11))])
_TIMES = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30),
                      timezones=_ZONES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=_TEXT, place=_TEXT, support=st.lists(_TEXT, max_size=3, unique=True),
       held_on=st.dates(), time=_TIMES, quoted=st.booleans(), equity=st.none() | _TEXT,
       recontact=st.sampled_from(["none", "email", "peer_in_person"]),
       earliest=st.none() | st.dates(), trace=st.booleans(), state=st.none() | _TEXT)
def test_generated_conversations_give_the_dumps_bytes(
    summary: str, place: str, support: list[str], held_on: date, time: datetime, quoted: bool,
    equity: str | None, recontact: str, earliest: date | None, trace: bool, state: str | None,
) -> None:
    consent = {"to_store": True, "to_quote": quoted, "to_recontact": recontact != "none",
               "channel": recontact, "earliest_contact_on": earliest}
    try:
        data = conversation(summary=summary, place=place, setting=place, held_on=held_on,
                            support_shared=support, consent=consent,
                            quotes=example_of(type(conversation()))["quotes"] if quoted else [],
                            equity=None if equity is None else {"age_band": equity[:64],
                                                                "area": summary[:64]})
        draft = new_event(
            ConversationLoggedEvent, data=data, source="intake", subjectversion=1,
            actorid="listener_1", actorrole=ActorRole.COMMUNITY_LISTENER,
            correlationid=str(uuid4()), time=time, tracestate=state,
            traceparent=f"00-{uuid4().hex}-{uuid4().hex[:16]}-01" if trace else None)
    except ValidationError:
        assume(False)
        raise
    written = one_pass(draft)
    assert written is not None and written == dumped(draft)
    assert canonical_body(draft) == written


@pytest.mark.parametrize("model", [
    WithFloat(), WithSerializer(), WithComputed(), WithAlias(), WithExtra(other=1), cached(),
    WithValidator(), WithSet(), WithLeaf(leaf=SubLeaf(name="x")), WithLabel(), WithHundred(),
    WithEncoders(), WithTemporal(), WithPlainSerializer(), WithOwnDump(),
    WithTypeChangingValidator(n=5),
    Moment(at=datetime(1970, 1, 1, tzinfo=ZoneInfo("Africa/Monrovia"))),
    Moment(at=datetime(1900, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam"))),
    Moment(at=datetime(2020, 1, 1, tzinfo=timezone(timedelta(seconds=-30)))),
    Moment(at=datetime(2020, 1, 1, tzinfo=timezone(timedelta(seconds=59)))),
    Moment(at=datetime(2020, 1, 1, tzinfo=timezone(timedelta(microseconds=-1)))),
    Moment(at=datetime(2020, 1, 1, tzinfo=UTC), maybe=datetime(2020, 1, 1, tzinfo=NoOffset())),
    WithLeaf(leaf=Leaf(name="x"), leaves=(Leaf(name="y"), SubLeaf(name="z"))),
], ids=lambda m: type(m).__name__)
def test_what_is_not_plain_falls_back_to_the_dump(model: BaseModel) -> None:
    assert one_pass(model) is None
    assert canonical_body(model) == canonical_json(model.model_dump(mode="json"))  # type: ignore[arg-type]


def test_a_plain_model_with_nested_models_and_enums_is_written_in_one_pass() -> None:
    model = WithLeaf(leaf=Leaf(name="x"), leaves=(Leaf(name="y"), Leaf(name="é\"\\")))
    assert one_pass(model) == canonical_json(model.model_dump(mode="json"))


def test_an_integer_orjson_cannot_write_falls_back_to_the_dumps_error() -> None:
    class Big(BaseModel):
        n: int

    assert one_pass(Big(n=2**70)) is None


@settings(max_examples=300, deadline=None)
@given(at=st.datetimes(timezones=st.timezones()), maybe=st.none() | st.datetimes())
def test_datetimes_in_any_zone_give_the_dumps_bytes(at: datetime, maybe: datetime | None) -> None:
    """Historical zones have offsets in seconds (Monrovia's -0:44:30): those take the dump."""
    assume(at.utcoffset() is not None)
    moment = Moment(at=at, maybe=maybe)
    written = one_pass(moment)
    assert written is None or written == canonical_json(moment.model_dump(mode="json"))
    assert canonical_body(moment) == canonical_json(moment.model_dump(mode="json"))  # type: ignore[arg-type]


def test_a_draft_whose_time_was_set_unvalidated_in_an_odd_zone_takes_the_dump() -> None:
    draft = conversation_draft_with_trace()
    odd = draft.model_copy(update={"time": datetime(1970, 1, 1, tzinfo=ZoneInfo("Africa/Monrovia"))})
    assert one_pass(odd) is None
    assert canonical_body(odd) == dumped(odd)


def test_the_suite_holds_every_one_pass_body_to_the_dump() -> None:
    """A value of another type than its annotation's, set without validation, is the caller's
    mistake (the dump would write it as it finds it too); the cross-check the suite runs with
    catches it wherever a test appends one."""
    assert chain._CROSS_CHECK, "tests/conftest.py sets GT_CANONICAL_CROSS_CHECK=1"
    wrong = conversation_draft_with_trace().model_copy(update={"subjectversion": True})
    with pytest.raises(AssertionError, match="EventDraft"):
        canonical_body(wrong)


def test_classes_decided_in_threads_at_once_are_all_plain() -> None:
    def fresh() -> type[BaseModel]:
        class Inner(BaseModel):
            name: str = "a"

        class Outer(BaseModel):
            inner: Inner = Inner()
            inners: tuple[Inner, ...] = (Inner(),)

        return Outer

    classes = [fresh() for _ in range(40)]
    threads = [threading.Thread(target=lambda c=c: plain_check(c)) for c in classes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(plain_check(c) is not None for c in classes)
    assert all(one_pass(c()) == canonical_json(c().model_dump(mode="json")) for c in classes)


def conversation_draft_with_trace() -> EventDraft[Any]:
    return new_event(ConversationLoggedEvent, data=conversation(), source="intake",
                     subjectversion=1, actorid="listener_1",
                     actorrole=ActorRole.COMMUNITY_LISTENER, correlationid=str(uuid4()),
                     traceparent=f"00-{uuid4().hex}-{uuid4().hex[:16]}-01")
