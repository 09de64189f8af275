"""Enquiry categories: configurable and versioned (events record the version they used)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Category(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$", description="Stable code used in events.")
    name: str = Field(min_length=1, max_length=200, description="Plain-language name.")


class CategorySet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    categories: tuple[Category, ...] = Field(min_length=1)

    def codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.categories)


DEFAULT_CATEGORIES = CategorySet(
    version=1,
    categories=(
        Category(code="cultural_factors",
                 name="Cultural factors around mental health and offers of help"),
        Category(code="community_support", name="Value of community support"),
        Category(code="clinical_and_social_help", name="Value of clinical and social help"),
        Category(code="continuity_of_care", name="Continuity of care and relationships"),
    ),
)


def load_categories(path: Path | None) -> CategorySet:
    if path is None:
        return DEFAULT_CATEGORIES
    return CategorySet.model_validate(json.loads(path.read_text(encoding="utf-8")))
