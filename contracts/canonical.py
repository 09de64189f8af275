"""The canonical body in one pass: orjson writing an event's validated attributes directly.

The canonical body is `canonical_json(event.model_dump(mode="json", exclude=chain fields))`.
That dump builds the whole event as Python objects before orjson writes them: ≈ 8 of the ≈ 10 µs
a ConversationLogged takes. orjson can write the attributes themselves (≈ 3.5 µs), and gives the
very same bytes whenever every value is of a type both write alike: strings, integers, booleans,
None, UUIDs, dates, datetimes, enums of strings or integers, tuples of these, and nested models
made of them. The strings are orjson's in both ways; dates and datetimes, zones and fractions
included, are written alike (`tests/unit/test_canonical.py` holds both ways to each other on
every event type, on generated values and on hand-picked edges).

So a model class is written in one pass only if it is *plain*, checked once per class: every
field's annotation is made of those types (constraints and validators that keep the value's
type are allowed, anything that may change how it is written is not: serializers, computed
fields, aliases, exclusions, extra fields, cached properties, floats, sets, mappings, bytes),
and a field annotated with a model holds exactly that class (pydantic writes a subclass's
instance with the annotated class's fields only). Anything else, checked again per value, falls
back to the dump: `one_pass` answers None and the caller takes the dump's way. A type variable
field (`EventDraft.data`) is written as pydantic writes it, by the value's own class, which must
then be plain too.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Collection
from datetime import date, datetime
from enum import Enum
from functools import cached_property
from typing import Annotated, Any, Final, Literal, TypeVar, get_args, get_origin
from uuid import UUID

import annotated_types
from pydantic import AfterValidator, AwareDatetime, BaseModel, RootModel, StringConstraints

from contracts.fields import require_unique

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - contracts stay usable with the standard library alone
    _orjson = None

_LEAVES: Final = frozenset({str, int, bool, type(None), UUID, date, datetime, AwareDatetime})
_LITERALS: Final = (str, int, bool, type(None))
#: Validators that return the value they were given, of the same type.
_SHAPE_KEEPING: Final = frozenset({require_unique})
#: What pydantic keeps for `Field(pattern=..., strict=...)`: checks only.
_CHECK_ONLY_GENERAL: Final = frozenset({"pattern", "strict"})

#: Per plain model class: its number of fields, and its model fields as (name, the class the
#: annotation names, or None for a type variable, and whether it is a tuple of them). None: not
#: plain. Filled on first sight of each class.
_Spec = tuple[int, tuple[tuple[str, type[BaseModel] | None, bool], ...]]
_SPECS: dict[type, _Spec | None] = {}
_UNSEEN: Final[Any] = object()
_OPTIONS: Final = 0 if _orjson is None else _orjson.OPT_SORT_KEYS | _orjson.OPT_UTC_Z


class _NotPlain(Exception):
    """This value is not written alike by orjson and by pydantic's dump."""


def one_pass(event: BaseModel, exclude: Collection[str] = ()) -> bytes | None:
    """The canonical JSON of `event` without the fields in `exclude`, written by orjson from its
    attributes, or None when it cannot be (not plain, or orjson not installed)."""
    if _orjson is None:
        return None
    try:
        fields = _fields_of(event)
        if exclude and not fields.keys().isdisjoint(exclude):
            fields = {k: v for k, v in fields.items() if k not in exclude}
        return bytes(_orjson.dumps(fields, default=_fields_of, option=_OPTIONS))
    except (_NotPlain, TypeError):  # orjson's JSONEncodeError is a TypeError
        return None


def _fields_of(value: Any) -> dict[str, Any]:
    """A plain model's attributes, for orjson to write (its `default`); raises _NotPlain."""
    spec = _SPECS.get(type(value), _UNSEEN)
    if spec is _UNSEEN:
        spec = plain_spec(type(value)) if isinstance(value, BaseModel) else None
    if spec is None:
        raise _NotPlain
    count, models = spec  # type: ignore[misc]
    fields: dict[str, Any] = value.__dict__
    if len(fields) != count:
        raise _NotPlain
    for name, model, many in models:
        held = fields[name]
        if model is None or held is None:
            continue
        if (any(type(item) is not model for item in held) if many else type(held) is not model):
            raise _NotPlain
    return fields


def plain_spec(cls: type) -> _Spec | None:
    """`cls`'s spec if it is plain (see the module's docstring), else None; kept per class."""
    if cls in _SPECS:
        return _SPECS[cls]
    _SPECS[cls] = None  # a model that holds itself is not plain
    try:
        spec = _spec_of(cls)
    except _NotPlain:
        spec = None
    _SPECS[cls] = spec
    return spec


def _spec_of(cls: type) -> _Spec:
    if not issubclass(cls, BaseModel) or issubclass(cls, RootModel):
        raise _NotPlain
    decorators = cls.__pydantic_decorators__
    config = cls.model_config
    if (decorators.field_serializers or decorators.model_serializers
            or decorators.computed_fields or config.get("extra") == "allow"
            or any(isinstance(v, cached_property) for c in cls.__mro__ for v in vars(c).values())):
        raise _NotPlain
    models: list[tuple[str, type[BaseModel] | None, bool]] = []
    for name, info in cls.model_fields.items():
        if (info.exclude or (info.alias or name) != name
                or (info.serialization_alias or name) != name
                or getattr(info, "exclude_if", None) is not None
                or not all(map(_keeps_shape, info.metadata))):
            raise _NotPlain
        held = _model_in(info.annotation)
        if held is not None:
            models.append((name, *held))
    return len(cls.model_fields), tuple(models)


def _model_in(tp: Any, many: bool = False) -> tuple[type[BaseModel] | None, bool] | None:
    """The model a plain field's annotation holds (its class, or None for a type variable, and
    whether a tuple of them), None if it holds no model; raises _NotPlain if not plain."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *metadata = get_args(tp)
        if not all(map(_keeps_shape, metadata)):
            raise _NotPlain
        return _model_in(base, many)
    if origin is Literal:
        if all(type(v) in _LITERALS for v in get_args(tp)):
            return None
        raise _NotPlain
    if origin in (typing.Union, types.UnionType):
        held = [m for m in (_model_in(arg, many) for arg in get_args(tp)) if m is not None]
        if len(held) > 1:
            raise _NotPlain
        return held[0] if held else None
    if origin is tuple:
        args = get_args(tp)
        if many or len(args) != 2 or args[1] is not Ellipsis:
            raise _NotPlain
        return _model_in(args[0], True)
    if isinstance(tp, TypeVar):
        bound = tp.__bound__
        if not many and isinstance(bound, type) and issubclass(bound, BaseModel):
            return (None, False)
        raise _NotPlain
    if tp in _LEAVES:
        return None
    if isinstance(tp, type) and issubclass(tp, Enum):
        if all(type(member.value) in (str, int) for member in tp):
            return None
        raise _NotPlain
    if isinstance(tp, type) and issubclass(tp, BaseModel) and plain_spec(tp) is not None:
        return (tp, many)
    raise _NotPlain


def _keeps_shape(metadata: Any) -> bool:
    """Whether a field's constraint or validator leaves how its value is written alone."""
    if isinstance(metadata, (StringConstraints, annotated_types.BaseMetadata)):
        return True
    if isinstance(metadata, AfterValidator):
        return metadata.func in _SHAPE_KEEPING
    if type(metadata).__name__ == "_PydanticGeneralMetadata":
        return set(vars(metadata)) <= _CHECK_ONLY_GENERAL
    return False
