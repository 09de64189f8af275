"""Jargon becomes common service names: whole words, case-aware, one pass."""

from __future__ import annotations

import json
from pathlib import Path

from services.feedback.domain.glossary import Glossary, load_glossary, shipped_glossary


def test_shipped_glossary_names_the_common_services() -> None:
    g = shipped_glossary()
    assert g.plain("Referral to IAPT") == "Referral to NHS Talking Therapies"
    assert g.plain("under the CMHF") == "under the Community Mental Health Framework"
    assert g.plain("the CMHT") == "the community mental health team"


def test_only_whole_words_are_replaced() -> None:
    g = Glossary({"CMHT": "community mental health team"})
    assert g.plain("CMHTX and xCMHT and x_CMHT stay") == "CMHTX and xCMHT and x_CMHT stay"
    assert g.plain("a CMHT-led group") == "a community mental health team-led group"


def test_acronyms_match_only_as_written_and_other_terms_in_any_case() -> None:
    g = Glossary({"SPA": "single point of access", "signposting": "pointing to other help"})
    assert g.plain("a day at the spa") == "a day at the spa"
    assert g.plain("Call the SPA") == "Call the single point of access"
    assert g.plain("more SIGNPOSTING") == "more pointing to other help"


def test_a_replacement_starting_a_sentence_starts_with_a_capital() -> None:
    g = Glossary({"CMHT": "community mental health team"})
    assert g.plain("CMHT opens late. CMHT is near.") == (
        "Community mental health team opens late. Community mental health team is near.")
    assert g.plain("CMHT", sentence=False) == "community mental health team"


def test_the_longest_term_wins_and_replacements_are_not_replaced_again() -> None:
    g = Glossary({"CMHT": "community mental health team", "CMHTs": "community teams",
                  "IAPT": "NHS Talking Therapies", "NHS": "National Health Service"})
    assert g.plain("CMHTs and IAPT") == "Community teams and NHS Talking Therapies"


def test_a_term_already_explained_in_brackets_is_not_repeated() -> None:
    g = Glossary({"IAPT": "NHS Talking Therapies"})
    assert g.plain("NHS Talking Therapies (IAPT) is free") == "NHS Talking Therapies is free"
    assert g.plain("the service (IAPT)") == "the service (NHS Talking Therapies)"


def test_an_operator_file_extends_and_overrides_the_shipped_glossary(tmp_path: Path) -> None:
    extra = tmp_path / "glossary.json"
    extra.write_text(json.dumps({"terms": {"ELFT": "East London mental health services",
                                           "IAPT": "talking therapies"}}))
    g = load_glossary(extra)
    assert g.plain("ELFT runs IAPT and the CMHT") == (
        "East London mental health services runs talking therapies and the community mental "
        "health team")
