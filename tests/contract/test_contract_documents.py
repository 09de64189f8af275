"""The committed documents are what the models generate, and every example is a valid event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contracts import EVENT_CLASSES, TOPIC_BY_TYPE, parse_event, verify_chain
from contracts.events import EVENT_CLASS_LIST
from contracts.generate import CONTRACTS_DIR, REGENERATE, render_documents, stale_documents


def test_committed_documents_are_current() -> None:
    stale = stale_documents()
    assert not stale, (
        f"Generated contract documents are stale: {', '.join(stale)}. "
        f"Regenerate them with `{REGENERATE}` and commit the result."
    )


def test_documents_render_identically_twice() -> None:
    assert render_documents() == render_documents()


@pytest.mark.parametrize("type_name", sorted(EVENT_CLASSES))
def test_each_example_parses_and_its_chain_verifies(type_name: str) -> None:
    raw = (CONTRACTS_DIR / "examples" / f"{type_name}.json").read_bytes()

    event = parse_event(raw)

    assert type(event) is EVENT_CLASSES[type_name]
    assert event.sequence == 1 and event.prevhash == "0" * 64
    assert verify_chain([event]) is None


@pytest.mark.parametrize("type_name", sorted(EVENT_CLASSES))
def test_each_schema_is_where_its_events_say(type_name: str) -> None:
    event = parse_event((CONTRACTS_DIR / "examples" / f"{type_name}.json").read_bytes())
    schema = json.loads((CONTRACTS_DIR / event.dataschema).read_text(encoding="utf-8"))

    assert schema["$id"] == event.dataschema
    assert schema["title"] == type(event).__name__
    assert schema["properties"]["type"]["const"] == type_name


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"{schema['title']}.{name}", spec) for name, spec in schema["properties"].items()]
    for definition in schema.get("$defs", {}).values():
        if "properties" in definition:
            found += _properties(definition)
    return found


@pytest.mark.parametrize("event_class", EVENT_CLASS_LIST, ids=lambda cls: cls.__name__)
def test_every_field_has_a_description_and_an_example(event_class: Any) -> None:
    schema = event_class.model_json_schema(mode="validation")

    lacking = [
        name
        for name, spec in _properties(schema)
        if not spec.get("description") or not spec.get("examples")
    ]

    assert lacking == []


def test_asyncapi_describes_every_topic_with_its_events() -> None:
    document = json.loads(Path(CONTRACTS_DIR / "asyncapi" / "asyncapi.json").read_text("utf-8"))

    addresses = {channel["address"] for channel in document["channels"].values()}
    schemas = document["components"]["schemas"]

    assert document["asyncapi"] == "3.0.0"
    assert addresses == set(TOPIC_BY_TYPE.values())
    assert {cls.__name__ for cls in EVENT_CLASS_LIST} <= set(schemas)
