"""Field types shared by every contract: identifiers, codes, names and their rules.

Each type carries its own pattern or length limits, so a schema reader sees the rule where the
field is declared. Nothing here may hold personal data in clear: ids are pseudonymous.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, Any, Final, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError

#: Every contract model is immutable and rejects fields it does not know.
CONTRACT_CONFIG: Final = ConfigDict(frozen=True, extra="forbid")

SOURCE_PATTERN: Final = r"^[a-z][a-z0-9._-]{1,63}$"
PSEUDONYMOUS_ID_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,64}$"
PARTICIPANT_ID_PATTERN: Final = r"^p_[A-Za-z0-9]{8,40}$"
CATEGORY_CODE_PATTERN: Final = r"^[a-z][a-z0-9_]{1,63}$"
SHA256_HEX_PATTERN: Final = r"^[0-9a-f]{64}$"
TRACEPARENT_PATTERN: Final = r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
BASE64URL_PATTERN: Final = r"^[A-Za-z0-9_-]+={0,2}$"
#: Text holds no control characters but tab and line breaks: PostgreSQL cannot store NUL, and
#: the others are terminal and log escapes, never plain language.
PLAIN_TEXT_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

SourceName = Annotated[str, StringConstraints(pattern=SOURCE_PATTERN)]
PseudonymousId = Annotated[str, StringConstraints(pattern=PSEUDONYMOUS_ID_PATTERN)]
ParticipantId = Annotated[str, StringConstraints(pattern=PARTICIPANT_ID_PATTERN)]
CategoryCode = Annotated[str, StringConstraints(pattern=CATEGORY_CODE_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=SHA256_HEX_PATTERN)]
Reference = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=PLAIN_TEXT_PATTERN)]
#: A commonly understood name (a service, a place, a framework), never system jargon.
PlainName = Annotated[
    str, StringConstraints(min_length=1, max_length=120, pattern=PLAIN_TEXT_PATTERN)]
PlainStatement = Annotated[
    str, StringConstraints(min_length=1, max_length=2000, pattern=PLAIN_TEXT_PATTERN)]
SelfDescription = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=PLAIN_TEXT_PATTERN)]

ItemT = TypeVar("ItemT", bound=Hashable)
FuncT = TypeVar("FuncT")


def keeps_types(func: FuncT) -> FuncT:
    """Mark a validator that returns (or leaves) each value of the type its field's annotation
    gives: a check that raises or passes the value through, or one that only normalises within
    the type. `contracts.canonical` writes a model in one pass only if every validator after
    parsing (a model validator, a field validator, an `AfterValidator`) is so marked."""
    target: Any = getattr(func, "__func__", func)
    target.__keeps_types__ = True
    return func


@keeps_types
def require_unique(items: tuple[ItemT, ...]) -> tuple[ItemT, ...]:
    """Reject repeated items; the message names the rule, never the repeated value."""
    if len(set(items)) != len(items):
        raise PydanticCustomError("unique_items", "Items must be unique")
    return items


Unique = AfterValidator(require_unique)
UNIQUE_ITEMS: Final[dict[str, Any]] = {"uniqueItems": True}


def example_of(model: type[BaseModel]) -> dict[str, Any]:
    """The first declared example of every field, as JSON-ready values.

    Nested models declare their own examples, so a parent field's example is built from them
    and the whole event example follows from the field examples alone.
    """
    example: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if not info.examples:
            raise TypeError(f"{model.__name__}.{name} declares no example")
        example[name] = info.examples[0]
    return example
