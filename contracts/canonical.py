"""The canonical body in one pass: orjson writing an event's attributes directly.

The canonical body is `canonical_json(event.model_dump(mode="json", exclude=chain fields))`.
That dump builds the whole event as Python objects before orjson writes them: ≈ 8 of the ≈ 10 µs
a ConversationLogged takes. orjson can write the attributes themselves in ≈ 4 µs, and gives the
very same bytes whenever every value is one both write alike: a string, an integer, a boolean,
None, a UUID, a date, a datetime whose offset is whole minutes (or none, or UTC), an enum member
written as its value, a tuple of these, a nested model made of them.

So a model class is written in one pass only if it is *plain*, decided once per class: every
field's annotation is made of those types, models and type variables bound to models; no
serializer anywhere in its core schema (a field's, the model's, `PlainSerializer`, a schema of
its own), no configuration that changes how values are written (`json_encoders`, `ser_json_*`,
aliases written by alias), no computed fields, exclusions, extra fields, cached properties or
`model_dump` of its own; each enum member writes as its value; and every validator that runs
after parsing is marked `contracts.fields.keeps_types` (so validation leaves each value of its
annotated type). Then each instance is checked where a validated value may still be written
otherwise, by a function made for the class: its number of attributes, each nested model's
exact class (pydantic writes a subclass's instance with the annotated class's fields only),
each datetime's zone (orjson rounds an offset's seconds, pydantic cuts them). A type variable
field (`EventDraft.data`) is written as pydantic writes it, by the value's own class, which must
then be plain too. Whatever fails gives None, and the caller takes the dump.

What is not checked per value is what validation guarantees: an instance made without it
(`model_construct`, `model_copy(update=...)`) must hold values of its annotated types, as the
dump itself would otherwise write them as it finds them (with a warning) and a reader parsing
the event would not get them back. With `GT_CANONICAL_CROSS_CHECK=1` (the test suite sets it)
`contracts.chain.canonical_body` also makes the dump and raises if the two differ, so every
event any test appends is held to it. `tests/unit/test_canonical.py` holds both ways to each
other on every event type and on the edges above.
"""

from __future__ import annotations

import inspect
import re
import threading
import types
import typing
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime
from enum import Enum
from functools import cached_property
from typing import Annotated, Any, Final, Literal, TypeVar, get_args, get_origin
from uuid import UUID

import annotated_types
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    NaiveDatetime,
    PlainValidator,
    RootModel,
    StringConstraints,
    WrapValidator,
)

from contracts.envelope import PARSED_UTC

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - contracts stay usable with the standard library alone
    _orjson = None

_OPTIONS: Final = 0 if _orjson is None else _orjson.OPT_SORT_KEYS | _orjson.OPT_UTC_Z
#: Leaf annotations and the exact runtime type each allows.
_LEAVES: Final[dict[Any, type]] = {
    str: str, int: int, bool: bool, type(None): type(None), UUID: UUID, date: date,
    datetime: datetime, AwareDatetime: datetime, NaiveDatetime: datetime,
}
#: Configuration that changes how values are written.
_WRITING_CONFIG: Final = frozenset({
    "json_encoders", "ser_json_timedelta", "ser_json_temporal", "ser_json_bytes",
    "ser_json_inf_nan", "serialize_by_alias", "use_enum_values"})

#: Per plain model class: a function that says whether an instance's attributes (its
#: `__dict__`) are written alike both ways. Absent: not decided yet; None: not plain.
_CHECKS: dict[type, Callable[[dict[str, Any]], bool] | None] = {}
_DECIDING = threading.RLock()  # one thread decides at a time; a class seen again while it is
_PENDING: set[type] = set()    # being decided (a model holding itself) is not plain


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
    except (_NotPlain, TypeError, KeyError):  # orjson's JSONEncodeError is a TypeError
        return None


def _fields_of(value: Any) -> dict[str, Any]:
    """A plain model's attributes, for orjson to write (its `default`); raises _NotPlain."""
    cls = type(value)
    check = _CHECKS[cls] if cls in _CHECKS else plain_check(cls)
    fields: dict[str, Any] = getattr(value, "__dict__", None)  # type: ignore[assignment]
    if check is None or fields is None or not check(fields):
        raise _NotPlain
    return fields


def plain_check(cls: type) -> Callable[[dict[str, Any]], bool] | None:
    """The value check of `cls` if it is plain (see the module's docstring), else None."""
    with _DECIDING:
        if cls in _CHECKS:
            return _CHECKS[cls]
        if cls in _PENDING:
            return None
        _PENDING.add(cls)
        try:
            check = _check_of(cls)
        except Exception:  # noqa: BLE001 - anything unforeseen: the dump's way, always right
            check = None
        finally:
            _PENDING.discard(cls)
        _CHECKS[cls] = check
        return check


def _check_of(cls: type) -> Callable[[dict[str, Any]], bool]:
    if not isinstance(cls, type) or not issubclass(cls, BaseModel) or issubclass(cls, RootModel):
        raise _NotPlain
    schema = cls.__pydantic_core_schema__
    decorators = cls.__pydantic_decorators__
    if (cls.model_dump is not BaseModel.model_dump
            or decorators.computed_fields
            or cls.model_config.get("extra") == "allow"
            or not _WRITING_CONFIG.isdisjoint(cls.model_config)
            or any(isinstance(v, cached_property) for c in cls.__mro__ for v in vars(c).values())
            or not all(_keeps_types(d.func, d.info.mode)
                       for d in decorators.field_validators.values())
            or not all(_keeps_types(d.func, d.info.mode)
                       for d in decorators.model_validators.values())
            or _writes_its_own_way(dict(schema))):  # (a deferred schema is built by dict())
        raise _NotPlain
    tests = [f"len(d) == {len(cls.model_fields)}"]
    names: dict[str, Any] = {}
    for n, (name, info) in enumerate(cls.model_fields.items()):
        if (info.exclude or (info.alias or name) != name
                or (info.serialization_alias or name) != name
                or getattr(info, "exclude_if", None) is not None
                or not all(map(_keeps_shape, info.metadata))):
            raise _NotPlain
        test = _test(info.annotation, f"d[{name!r}]", f"v{n}", names)
        if test:
            tests.append(test)
    source = "def check(d):\n    return (" + "\n            and ".join(tests) + ")"
    scope: dict[str, Any] = {"_zone_ok": _zone_ok, **names}
    exec(source, scope)  # noqa: S102 - our own text, made from the class's annotations
    return scope["check"]  # type: ignore[no-any-return]


def _test(tp: Any, value: str, var: str, names: dict[str, Any]) -> str:
    """A Python expression true when `value`, of a type `tp` allows, is written alike both ways;
    "" when every value validation lets through is (strings, integers, UUIDs, ...: validation
    gives them their annotated type, and the validators that run after it keep it). Raises
    _NotPlain for an annotation that is not plain."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *metadata = get_args(tp)
        if not all(map(_keeps_shape, metadata)):
            raise _NotPlain
        return _test(base, value, var, names)
    if origin is Literal:
        if not {type(v) for v in get_args(tp)} <= {str, int, bool, type(None)}:
            raise _NotPlain
        return ""
    if origin in (typing.Union, types.UnionType):  # the value taken once, then each way
        ways = [(a, _test(a, var, f"{var}_{i}", names)) for i, a in enumerate(get_args(tp))]
        if not any(test for _, test in ways):
            return ""
        # A way with no test of its own says only that the value is of its type.
        either = " or ".join(test or f"isinstance({var}, {_name(names, _runtime(a))})"
                             for a, test in ways)
        return f"((({var} := {value}) or True) and ({either}))"
    if origin is tuple:
        args = get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise _NotPlain
        item = _test(args[0], "i", f"{var}i", names)
        if not item:
            return ""
        exact = _EXACT.fullmatch(item)
        if not exact:  # a tuple of datetimes, say: not worth a loop per value
            raise _NotPlain
        kinds = _name(names, {names[exact["kind"]]})
        return f"(type({var} := {value}) is tuple and set(map(type, {var})) <= {kinds})"
    if isinstance(tp, TypeVar):  # written by the value's own class, checked when orjson asks
        bound = tp.__bound__
        if isinstance(bound, type) and issubclass(bound, BaseModel):
            return ""
        raise _NotPlain
    if tp in _LEAVES:
        if _LEAVES[tp] is datetime:
            return f"(type({var} := {value}) is {_name(names, datetime)} and _zone_ok({var}))"
        return ""
    if isinstance(tp, type) and issubclass(tp, Enum):
        if _orjson is None or any(_orjson.dumps(m) != _orjson.dumps(m.value) for m in tp):
            raise _NotPlain
        return ""
    if isinstance(tp, type) and issubclass(tp, BaseModel) and plain_check(tp) is not None:
        # pydantic writes a subclass's instance with this class's fields only: exactly it
        return f"type({value}) is {_name(names, tp)}"
    raise _NotPlain


def _runtime(tp: Any) -> Any:
    """The runtime type(s) of an annotation that needs no test of its own, for `isinstance`."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    origin = get_origin(tp)
    if origin is Literal:
        return tuple({type(v) for v in get_args(tp)})
    if origin is tuple:
        return tuple
    if isinstance(tp, TypeVar):
        return tp.__bound__
    return _LEAVES.get(tp, tp)


_EXACT: Final = re.compile(r"type\(i\) is (?P<kind>_t\d+)")


def _name(names: dict[str, Any], obj: Any) -> str:
    name = f"_t{len(names)}"
    names[name] = obj
    return name


def _keeps_types(func: Any, mode: str) -> bool:
    """Whether a validator leaves each value of its annotated type: one that runs before
    parsing does (the value is parsed after it), one after must say so (`keeps_types`)."""
    if mode == "before":
        return True
    func = inspect.unwrap(getattr(func, "__func__", func))
    return bool(getattr(func, "__keeps_types__", False))


def _keeps_shape(metadata: Any) -> bool:
    """Whether a field's constraint or validator leaves its value's type alone."""
    if isinstance(metadata, (StringConstraints, annotated_types.BaseMetadata)):
        return True
    if isinstance(metadata, BeforeValidator):
        return True
    if isinstance(metadata, (AfterValidator, WrapValidator, PlainValidator)):
        return _keeps_types(metadata.func, "after")
    if type(metadata).__name__ == "_PydanticGeneralMetadata":
        return set(vars(metadata)) <= {"pattern", "strict"}
    return False


def _zone_ok(value: datetime) -> bool:
    """Whether orjson writes this datetime's zone as pydantic does: none, UTC, or an offset of
    whole minutes (orjson rounds seconds, pydantic cuts them; a zone without an offset is naive
    to pydantic, UTC to orjson)."""
    zone = value.tzinfo
    if zone is None or zone is UTC or zone is PARSED_UTC:
        return True
    offset = value.utcoffset()
    return offset is not None and not offset.microseconds and offset.seconds % 60 == 0


def _writes_its_own_way(schema: Any) -> bool:
    """Whether a core schema holds a serializer of any kind (inference for a type variable's
    field, `{'type': 'any'}`, writes the value by its own class, as orjson does)."""
    if isinstance(schema, dict):
        found = schema.get("serialization")
        if found is not None and found != {"type": "any"}:
            return True
        return any(_writes_its_own_way(v) for k, v in schema.items() if k != "serialization")
    if isinstance(schema, (list, tuple)):
        return any(_writes_its_own_way(v) for v in schema)
    return False

