"""Models that are not plain, or hold values not written alike, for `test_canonical.py`: each
takes the dump's way (most came from a review that went looking for a difference)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, tzinfo
from enum import Enum, IntEnum
from functools import cached_property
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    computed_field,
    field_serializer,
    field_validator,
)


class NoOffset(tzinfo):
    """A zone that gives no offset: pydantic writes such a time naive, orjson as UTC."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> None:
        return None


class Colour(Enum):
    RED = "red"


class Leaf(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    colour: Colour = Colour.RED


class SubLeaf(Leaf):
    more: str = "also written by orjson, never by the dump"


class WithFloat(BaseModel):
    ratio: float = 0.1


class WithSerializer(BaseModel):
    when: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    @field_serializer("when")
    def _as_day(self, value: datetime) -> str:
        return value.date().isoformat()


class WithComputed(BaseModel):
    name: str = "a"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def upper(self) -> str:
        return self.name.upper()


class WithAlias(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)
    name: str = Field("a", serialization_alias="Name")


class WithExtra(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = "a"


class WithCachedProperty(BaseModel):
    name: str = "a"

    @cached_property
    def shout(self) -> str:
        return self.name + "!"


class WithValidator(BaseModel):
    name: Annotated[str, AfterValidator(str.upper)] = "a"


class WithSet(BaseModel):
    names: frozenset[str] = frozenset({"a", "b"})


class WithLeaf(BaseModel):
    leaf: Leaf
    leaves: tuple[Leaf, ...] = ()


class Labelled(str, Enum):
    """Members whose string is their label, not their value: orjson writes the string."""

    def __new__(cls, value: str, label: str) -> Self:
        member = str.__new__(cls, label)
        member._value_ = value
        return member

    A = ("a", "Alpha")


class Hundred(IntEnum):
    def __new__(cls, value: int, number: int) -> Self:
        member = int.__new__(cls, number)
        member._value_ = value
        return member

    ONE = (1, 100)


class WithLabel(BaseModel):
    label: Labelled = Labelled.A


class WithHundred(BaseModel):
    number: Hundred = Hundred.ONE


with warnings.catch_warnings():  # json_encoders is deprecated, not gone
    warnings.simplefilter("ignore", DeprecationWarning)

    class WithEncoders(BaseModel):
        model_config = ConfigDict(json_encoders={datetime: lambda v: "X"})
        when: datetime = datetime(2020, 1, 1, tzinfo=UTC)


class WithTemporal(BaseModel):
    model_config = ConfigDict(ser_json_temporal="milliseconds")
    when: datetime = datetime(2020, 1, 1, tzinfo=UTC)


class WithPlainSerializer(BaseModel):
    when: Annotated[datetime, PlainSerializer(lambda v: "day")] = datetime(2020, 1, 1, tzinfo=UTC)


class WithOwnDump(BaseModel):
    name: str = "a"

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().model_dump(**kwargs), "extra": 1}


class WithTypeChangingValidator(BaseModel):
    n: int = 1

    @field_validator("n")
    @classmethod
    def _positive(cls, value: int) -> Any:
        return value > 0  # a bool in an int field


class Moment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    at: AwareDatetime
    maybe: datetime | None = None


def cached() -> WithCachedProperty:
    model = WithCachedProperty()
    assert model.shout == "a!"  # now in the instance's __dict__
    return model
