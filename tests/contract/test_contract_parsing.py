"""parse_event: typed events from raw messages, and errors that name fields but leak nothing."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import (
    EVENT_CLASSES,
    MAX_EVENT_BYTES,
    ContractError,
    ConversationLoggedEvent,
    Problem,
    parse_event,
)
from contracts.events import EVENT_CLASS_LIST
from contracts.samples import example_event

SECRET = "jane.doe@example.org"


def example_message(type_name: str = "ConversationLogged") -> dict[str, Any]:
    message: dict[str, Any] = example_event(EVENT_CLASSES[type_name]).model_dump(mode="json")
    return message


def problems_of(message: Any) -> dict[str, str]:
    raw = message if isinstance(message, (str, bytes)) else json.dumps(message)
    with pytest.raises(ContractError) as caught:
        parse_event(raw)
    return {problem.field: problem.problem for problem in caught.value.problems}


def test_a_valid_message_parses_to_its_event_class() -> None:
    event = parse_event(json.dumps(example_message()))

    assert isinstance(event, ConversationLoggedEvent)
    assert event.data.consent.to_store is True


def test_a_reparsed_event_dumps_byte_identically() -> None:
    message = example_message()
    message["time"] = "2025-03-14T11:30:00.250+01:00"

    first = parse_event(json.dumps(message)).model_dump_json()
    second = parse_event(first).model_dump_json()

    assert first == second
    assert json.loads(first)["time"] == "2025-03-14T10:30:00.250000Z"


@pytest.mark.parametrize("field", ["time", "recordedtime"])
@pytest.mark.parametrize(("given", "stored"), [
    ("2025-03-14T11:30:00+01:00", "2025-03-14T10:30:00Z"),
    ("2025-03-14T05:30:00-05:00", "2025-03-14T10:30:00Z"),
    ("2025-03-14T10:30:00+00:00", "2025-03-14T10:30:00Z"),
    ("2025-03-14T10:30:00Z", "2025-03-14T10:30:00Z"),
])
def test_every_time_is_kept_in_utc(field: str, given: str, stored: str) -> None:
    message = example_message()
    message[field] = given

    event = parse_event(json.dumps(message))

    assert getattr(event, field).utcoffset() == timedelta(0)
    assert json.loads(event.model_dump_json())[field] == stored


@pytest.mark.parametrize("field", ["time", "recordedtime"])
@pytest.mark.parametrize("given", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_a_time_with_no_utc_equivalent_is_a_named_problem(field: str, given: str) -> None:
    message = example_message()
    message[field] = given

    assert problems_of(message) == {field: "must fall between the years 1 and 9999 in UTC"}


def test_a_missing_field_is_named() -> None:
    message = example_message()
    del message["data"]["summary"]

    assert problems_of(message) == {"data.summary": "Field required"}


def test_an_unknown_field_is_named() -> None:
    message = example_message()
    message["data"]["surname"] = "Doe"

    assert problems_of(message) == {"data.surname": "Extra inputs are not permitted"}


def test_a_wrong_type_is_named() -> None:
    message = example_message()
    message["subjectversion"] = "three"

    assert list(problems_of(message)) == ["subjectversion"]


def test_a_wrong_literal_lists_the_expected_values() -> None:
    message = example_message()
    message["data"]["consent"]["channel"] = "pigeon"

    problems = problems_of(message)

    assert problems == {
        "data.consent.channel": "Input should be 'email', 'peer_in_person' or 'none'"
    }


def test_an_unsupported_schemaversion_says_which_are_supported() -> None:
    message = example_message()
    message["schemaversion"] = 7

    assert problems_of(message) == {
        "schemaversion": "unsupported version 7 for ConversationLogged; supported: 1"
    }


def test_an_unknown_type_is_rejected() -> None:
    message = example_message()
    message["type"] = "ConversationForgotten"

    assert problems_of(message) == {"type": "unknown event type"}


def test_a_missing_type_is_rejected() -> None:
    message = example_message()
    del message["type"]

    assert problems_of(message) == {"type": "missing event type"}


@pytest.mark.parametrize("raw", ["{", "nul", b"\xff\xfe{}", ""])
def test_a_body_that_is_not_json_is_rejected(raw: str | bytes) -> None:
    assert problems_of(raw) == {"body": "not valid JSON"}


@pytest.mark.parametrize("raw", ["[]", "5", '"ConversationLogged"', "null"])
def test_a_body_that_is_not_an_object_is_rejected(raw: str) -> None:
    assert problems_of(raw) == {"body": "must be a JSON object"}


@pytest.mark.parametrize("kind", [bytes, str])
def test_a_body_over_one_mebibyte_is_rejected_unread(kind: type) -> None:
    raw = json.dumps(example_message()) + " " * MAX_EVENT_BYTES

    assert problems_of(raw.encode() if kind is bytes else raw) == {"body": "too large"}


def test_a_multibyte_body_is_measured_in_bytes() -> None:
    message = example_message()
    message["data"]["summary"] = "é" * 4000
    raw = json.dumps(message, ensure_ascii=False) + " " * (MAX_EVENT_BYTES - 5000)

    assert problems_of(raw) == {"body": "too large"}


def test_a_subject_that_is_not_the_aggregate_is_rejected() -> None:
    message = example_message()
    message["subject"] = "another-conversation"

    assert problems_of(message) == {"subject": "subject must equal data.conversation_id"}


def test_the_error_message_lists_every_problem() -> None:
    message = example_message()
    del message["data"]["summary"]
    message["sequence"] = 0

    with pytest.raises(ContractError) as caught:
        parse_event(json.dumps(message))

    assert "sequence: Input should be greater than or equal to 1" in str(caught.value)
    assert "data.summary: Field required" in str(caught.value)


def _leaf_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaf_paths(value, (*path, key))
    elif isinstance(node, list) and node:
        for index, value in enumerate(node):
            yield from _leaf_paths(value, (*path, index))
    else:
        yield path


def _planted(type_name: str, path: tuple[Any, ...], secret: Any) -> dict[str, Any]:
    message = example_message(type_name)
    node = message
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = secret
    return message


PLANTS = [
    (type_name, path)
    for type_name in sorted(EVENT_CLASSES)
    for path in _leaf_paths(example_message(type_name))
]


@pytest.mark.parametrize("shape", ["string", "number-like", "object", "list"])
@pytest.mark.parametrize(("type_name", "path"), PLANTS, ids=lambda value: str(value))
def test_errors_never_repeat_a_planted_secret(
    type_name: str, path: tuple[Any, ...], shape: str
) -> None:
    secret: Any = {
        "string": SECRET,
        "number-like": f"12{SECRET}",
        "object": {"email": SECRET},
        "list": [SECRET, SECRET],
    }[shape]
    raw = json.dumps(_planted(type_name, path, secret))

    try:
        parse_event(raw)
    except ContractError as error:
        assert SECRET not in str(error)
        assert SECRET not in repr(error.problems)
        assert error.__context__ is None and error.__cause__ is None
    except ValidationError:  # pragma: no cover - the failure being guarded against
        pytest.fail("a ValidationError (which carries the input) escaped parse_event")


def test_an_unknown_key_that_looks_personal_is_not_repeated() -> None:
    message = example_message()
    message["data"][SECRET] = "x"

    problems = problems_of(message)

    assert problems == {"data.<key>": "Extra inputs are not permitted"}


@pytest.mark.parametrize("event_class", EVENT_CLASS_LIST, ids=lambda cls: cls.__name__)
def test_events_are_frozen(event_class: Any) -> None:
    event = example_event(event_class)

    with pytest.raises(ValidationError, match="frozen"):
        event.subject = "changed"
    with pytest.raises(ValidationError, match="frozen"):
        setattr(event.data, next(iter(type(event.data).model_fields)), "changed")


def test_a_contract_error_survives_pickling() -> None:
    error = ContractError([Problem(field="type", problem="unknown event type")])

    copy = pickle.loads(pickle.dumps(error))

    assert copy.problems == error.problems and str(copy) == "type: unknown event type"


def test_a_uuid_error_does_not_quote_the_parser_detail() -> None:
    message = example_message()
    message["data"]["conversation_id"] = SECRET

    assert problems_of(message) == {"data.conversation_id": "Input should be a valid UUID"}
