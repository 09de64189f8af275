"""Rules for actions recorded against priorities.

Two actions are duplicates when they describe the same change (description, service and place,
compared ignoring case, spacing and final punctuation) against the same set of priorities (in any
order). Framework, framework area and status do not make an action new: a different status is a
status update of the existing action, and a different framework area is a correction of it.
An action against an overlapping but different set of priorities is a different action.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Collection, Iterable
from uuid import UUID

from services.priority.domain.rules import RuleBroken

_SPACES = re.compile(r"\s+")
_TRAILING = ".,;:!?"


def normalise(text: str) -> str:
    """The text as compared for duplicates: case, spacing and final punctuation do not count."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", folded).strip().rstrip(_TRAILING).strip()


def duplicate_key(description: str, service: str, place: str, priority_ids: Iterable[UUID]) -> str:
    """Equal for two actions exactly when they are duplicates (see the module docstring)."""
    identity = [normalise(description), normalise(service), normalise(place),
                sorted({str(p) for p in priority_ids})]
    return hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode()).hexdigest()


def unknown_priorities(cited: Iterable[UUID], agreed: Collection[UUID]) -> list[RuleBroken]:
    """Each cited priority must have been agreed; the field names its position, not its value."""
    return [
        RuleBroken(f"priority_ids.{i}", "no agreed priority has this id")
        for i, priority_id in enumerate(cited)
        if priority_id not in agreed
    ]
