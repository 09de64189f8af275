"""Plain names of enquiry categories, for telling people which of their points were answered.

The same file format as intake's categories (version + code/name list); an unknown code is
spoken as its words ("peer_support" -> "peer support") rather than shown as a code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_NAMES: Mapping[str, str] = {
    "cultural_factors": "Cultural factors around mental health and offers of help",
    "community_support": "Value of community support",
    "clinical_and_social_help": "Value of clinical and social help",
    "continuity_of_care": "Continuity of care and relationships",
}


class _Category(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    name: str = Field(min_length=1, max_length=200)


class _CategoryFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int = Field(ge=1)
    categories: tuple[_Category, ...] = Field(min_length=1)


class CategoryNames:
    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = dict(names)
        self._order = {code: i for i, code in enumerate(self._names)}

    def name(self, code: str) -> str:
        return self._names.get(code) or code.replace("_", " ").capitalize()

    def ordered(self, codes: Iterable[str]) -> list[str]:
        """Codes in the configured order (unknown ones last, alphabetically)."""
        return sorted(set(codes), key=lambda c: (self._order.get(c, len(self._order)), c))


def load_category_names(path: Path | None) -> CategoryNames:
    if path is None:
        return CategoryNames(DEFAULT_NAMES)
    parsed = _CategoryFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    return CategoryNames({c.code: c.name for c in parsed.categories})
