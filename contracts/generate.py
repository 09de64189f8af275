"""Write the committed contract documents: JSON Schemas, the AsyncAPI document, examples.

    python -m contracts.generate          # rewrite the documents
    python -m contracts.generate --check  # exit 1 if any document is stale

FastStream is imported here only: the rest of `contracts` needs just pydantic.
"""

from __future__ import annotations

import functools
import json
import operator
import sys
from pathlib import Path
from typing import Annotated, Any, Final

from faststream.kafka import KafkaBroker
from faststream.specification.asyncapi import AsyncAPI
from pydantic import Field

from contracts.events import EVENT_CLASS_LIST, schema_version, type_name
from contracts.events._declare import schema_path
from contracts.samples import example_event
from contracts.topics import TOPIC_BY_TYPE

CONTRACTS_DIR: Final = Path(__file__).resolve().parent
#: Version of the published contract set; bump the minor version on every additive change.
CONTRACTS_VERSION: Final = "1.0.0"
GENERATED_DIRS: Final = ("schemas", "asyncapi", "examples")
REGENERATE: Final = "python -m contracts.generate"

_TOPIC_DESCRIPTIONS: Final = {
    "intake.conversations.v1": "Conversations community listeners logged (ConversationLogged).",
    "intake.participants.v1": "Participants erased or whose consent changed.",
    "insight.insights.v1": "Insights drafted from conversations (InsightDrafted).",
    "priority.priorities.v1": "Priorities agreed in co-production sessions (PriorityAgreed).",
    "priority.actions.v1": "Actions services and trusts took (ActionTaken).",
    "feedback.notifications.v1": "Participants told what changed (ParticipantNotified).",
}
_API_DESCRIPTION: Final = (
    "Public events of the golden thread of influence. Each message value is one event in "
    "CloudEvents 1.0 structured mode (JSON); the message key is the event's subject (UTF-8). "
    "Each source chains its events by sequence and sha256 hash (see contracts.chain)."
)


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def json_schemas() -> dict[str, str]:
    documents = {}
    for event_class in EVENT_CLASS_LIST:
        path = schema_path(type_name(event_class), schema_version(event_class))
        schema = event_class.model_json_schema(mode="validation")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": path, **schema}
        documents[path] = _dump(schema)
    return documents


def asyncapi_document() -> str:
    broker = KafkaBroker()  # only described, never connected
    for topic, description in _TOPIC_DESCRIPTIONS.items():
        classes = [cls for cls in EVENT_CLASS_LIST if TOPIC_BY_TYPE[type_name(cls)] == topic]
        schema: Any = classes[0]
        if len(classes) > 1:
            union = functools.reduce(operator.or_, classes)
            schema = Annotated[union, Field(discriminator="type")]
        broker.publisher(topic, schema=schema, title=topic, description=description)
    spec = AsyncAPI(
        broker,
        title="Golden Thread",
        version=CONTRACTS_VERSION,
        description=_API_DESCRIPTION,
        schema_version="3.0.0",
    ).to_specification()
    return _dump(json.loads(spec.to_json()))


def examples() -> dict[str, str]:
    return {
        f"examples/{type_name(cls)}.json": _dump(example_event(cls).model_dump(mode="json"))
        for cls in EVENT_CLASS_LIST
    }


def render_documents() -> dict[str, str]:
    """Every generated document, keyed by its path relative to the contracts package."""
    return {**json_schemas(), "asyncapi/asyncapi.json": asyncapi_document(), **examples()}


def stale_documents(root: Path = CONTRACTS_DIR) -> list[str]:
    """Paths that are missing, differ from what would be generated, or are no longer generated."""
    expected = render_documents()
    stale = [
        path
        for path, text in expected.items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]
    for folder in GENERATED_DIRS:
        for file in sorted((root / folder).glob("*.json")):
            if file.relative_to(root).as_posix() not in expected:
                stale.append(file.relative_to(root).as_posix())
    return stale


def write_documents(root: Path = CONTRACTS_DIR) -> list[str]:
    """Rewrite every generated document and delete ones no longer generated."""
    expected = render_documents()
    for folder in GENERATED_DIRS:
        for file in (root / folder).glob("*.json"):
            if file.relative_to(root).as_posix() not in expected:
                file.unlink()
    for path, text in expected.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    return sorted(expected)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        stale = stale_documents()
        for path in stale:
            print(f"stale: contracts/{path} (run: {REGENERATE})", file=sys.stderr)
        return 1 if stale else 0
    for path in write_documents():
        print(f"wrote contracts/{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
