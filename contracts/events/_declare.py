"""Field declarations every concrete event class repeats: type, schema and payload."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from contracts.fields import example_of


def schema_path(type_name: str, version: int) -> str:
    """Relative URI of the JSON Schema file of one event type and version."""
    return f"schemas/{type_name}.v{version}.json"


def type_field(type_name: str) -> Any:
    return Field(type_name, description="Event type name.", examples=[type_name])


def dataschema_field(type_name: str, version: int) -> Any:
    path = schema_path(type_name, version)
    return Field(
        path,
        min_length=1,
        max_length=256,
        description="Relative URI of this event's JSON Schema.",
        examples=[path],
    )


def schemaversion_field(version: int) -> Any:
    return Field(version, description="Version of this event type's schema.", examples=[version])


def data_field(payload: type[BaseModel], description: str) -> Any:
    return Field(description=description, examples=[example_of(payload)])
