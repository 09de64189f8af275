"""Contract errors that say what is wrong and where, and never repeat what was sent.

Inputs may hold personal data, and errors end up in logs and dead-letter topics, so a problem
is built only from the error's location and a message known not to echo the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import ErrorDetails

from contracts.fields import CONTRACT_CONFIG

#: Most problems reported for one message; the rest are counted, not listed.
MAX_PROBLEMS: Final = 50

#: Messages pydantic fills with parser details that can quote the input.
_FIXED_MESSAGES: Final = {
    "uuid_parsing": "Input should be a valid UUID",
    "json_invalid": "not valid JSON",
    "union_tag_invalid": "unknown event type",
    "union_tag_not_found": "missing event type",
    "url_parsing": "Input should be a valid URL",
}
#: Error types whose ctx["error"] is fixed parser text, safe to show.
_FIXED_DETAIL_TYPES: Final = frozenset(
    {
        "date_parsing",
        "date_from_datetime_parsing",
        "datetime_parsing",
        "datetime_from_date_parsing",
        "time_parsing",
    }
)
#: Whole-model rules that are really about one field: report them at that field.
_FIELD_OF_RULE: Final = {"subject_mismatch": "subject", "time_out_of_range": "time",
                          "recordedtime_out_of_range": "recordedtime"}
_SAFE_KEY: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class Problem(BaseModel):
    """One thing wrong with a message: where, and why."""

    model_config = CONTRACT_CONFIG

    field: str = Field(
        description="Dotted location of the field, or 'body' for the message as a whole.",
        examples=["data.consent.channel"],
    )
    problem: str = Field(
        description="What is wrong, without the value that was sent.",
        examples=["Input should be 'email', 'peer_in_person' or 'none'"],
    )

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


class ContractError(ValueError):
    """A message does not meet its contract. Safe to log and to dead-letter as is."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        shown = "; ".join(map(str, self.problems[:MAX_PROBLEMS]))
        hidden = len(self.problems) - MAX_PROBLEMS
        super().__init__(shown + (f"; and {hidden} more" if hidden > 0 else ""))

    def __reduce__(self) -> tuple[type[ContractError], tuple[tuple[Problem, ...]]]:
        # Rebuilt from its problems (not its text) when pickled, e.g. across processes.
        return (type(self), (self.problems,))


def dotted(loc: Iterable[int | str]) -> str:
    """A location as 'data.quotes.0.nonce'; a key that is not a plain name is not repeated."""
    parts = [
        str(part) if isinstance(part, int) or _SAFE_KEY.match(part) else "<key>" for part in loc
    ]
    return ".".join(parts) or "body"


def safe_message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind in _FIXED_MESSAGES:
        return _FIXED_MESSAGES[kind]
    ctx = error.get("ctx") or {}
    if "error" in ctx and kind not in _FIXED_DETAIL_TYPES:
        # The detail may quote the input; keep only the part of the message before it.
        return error["msg"].removesuffix(str(ctx["error"])).rstrip(", ") or "invalid value"
    return error["msg"]


def problems_from(exc: ValidationError, *, tag: str | None = None) -> list[Problem]:
    """Problems from a validation error; `tag` is the union member name pydantic puts first."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = error["loc"]
        if tag is not None and loc[:1] == (tag,):
            loc = loc[1:]
        if not loc and error["type"] in _FIELD_OF_RULE:
            loc = (_FIELD_OF_RULE[error["type"]],)
        problems.append(Problem(field=dotted(loc), problem=safe_message(error)))
    return problems
