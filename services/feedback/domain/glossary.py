"""Jargon to common service names: whole-word, case-aware, one pass.

Acronyms (terms without lower-case letters, like "CMHT") match only as written, so the word
"spa" is not mistaken for "SPA"; other terms match in any case. A replacement that begins a
sentence begins with a capital. Longer terms win over shorter ones they contain, and a
replacement is never itself replaced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n\s*)$")


class GlossaryFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(default=1, ge=1)
    terms: dict[str, str] = Field(description="Jargon term -> commonly understood name.")


class Glossary:
    def __init__(self, terms: Mapping[str, str]) -> None:
        self.terms = {k.strip(): v.strip() for k, v in terms.items() if k.strip() and v.strip()}
        self._exact = {k: v for k, v in self.terms.items() if not _has_lower(k)}
        self._folded = {k.casefold(): v for k, v in self.terms.items() if _has_lower(k)}
        self._pattern = _compile(self._exact, self._folded, "") if self.terms else None
        self._echo = _compile(self._exact, self._folded, "paren") if self.terms else None

    def plain(self, text: str, *, sentence: bool = True) -> str:
        """`text` with every glossary term replaced by its common name.

        `sentence=False` for a name that will stand inside a sentence (no capital at its start).
        """
        if self._pattern is None or self._echo is None:
            return text
        # "NHS Talking Therapies (IAPT)" says the common name already: drop the echo.
        text = self._echo.sub(self._drop_echo, text)
        return self._pattern.sub(lambda m: self._replacement(m, sentence), text)

    def _common(self, found: str) -> str:
        return self._exact.get(found) or self._folded.get(found.casefold(), found)

    def _drop_echo(self, match: re.Match[str]) -> str:
        before = match.string[: match.start()].casefold()
        said = before.endswith(self._common(match.group("term")).casefold())
        return "" if said else match.group(0)

    def _replacement(self, match: re.Match[str], sentence: bool) -> str:
        common = self._common(match.group(0))
        starts = match.start() > 0 or sentence
        if starts and _SENTENCE_START.search(match.string, 0, match.start()) and common[:1].islower():
            return common[:1].upper() + common[1:]
        return common

    def extended(self, more: Mapping[str, str]) -> Glossary:
        return Glossary({**self.terms, **more})


def _has_lower(term: str) -> bool:
    return any(c.islower() for c in term)


def _alternation(terms: list[str]) -> str:
    return "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))


def _compile(exact: Mapping[str, str], folded: Mapping[str, str], shape: str) -> re.Pattern[str]:
    parts = []
    if exact:
        parts.append(f"(?-i:{_alternation(list(exact))})")
    if folded:
        parts.append(f"(?:{_alternation(list(folded))})")
    # Whole words: no letter, digit or underscore on either side ("CMHT-led" still counts).
    term = rf"(?<!\w)(?P<term>{'|'.join(parts)})(?!\w)"
    return re.compile(rf"\s*\(\s*{term}\s*\)" if shape == "paren" else term, re.IGNORECASE)


def shipped_glossary() -> Glossary:
    text = (resources.files("services.feedback") / "glossary.json").read_text(encoding="utf-8")
    return Glossary(GlossaryFile.model_validate(json.loads(text)).terms)


def load_glossary(extra_file: Path | None) -> Glossary:
    """The shipped glossary, extended (and overridden) by the operator's file if given."""
    glossary = shipped_glossary()
    if extra_file is None:
        return glossary
    extra = GlossaryFile.model_validate(json.loads(extra_file.read_text(encoding="utf-8")))
    return glossary.extended(extra.terms)
