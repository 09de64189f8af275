"""The bench's plan: rounds within bounds, a full run repeating its short and noisy figures,
and phases chosen with --phases refused without the phases they build on."""

from __future__ import annotations

import dataclasses

import pytest

from golden_thread.bench.context import MAX_E2E_ROUNDS, MAX_PIPELINE_ROUNDS, Plan
from golden_thread.bench.runner import missing_prerequisites


def test_a_full_run_takes_its_short_figures_in_rounds_and_a_quick_one_once() -> None:
    full, quick = Plan.full(), Plan.quick()
    assert (full.pipeline_rounds, full.e2e_rounds) == (3, 3)
    assert (quick.pipeline_rounds, quick.e2e_rounds) == (1, 1)


@pytest.mark.parametrize(("field", "value"), [
    ("e2e_rounds", 0), ("e2e_rounds", MAX_E2E_ROUNDS + 1),
    ("pipeline_rounds", 0), ("pipeline_rounds", MAX_PIPELINE_ROUNDS + 1),
])
def test_rounds_out_of_bounds_are_refused_naming_the_field(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(Plan.quick(), **{field: value})


def test_a_phase_is_refused_without_every_phase_whose_work_it_reads() -> None:
    # e2e reads the insight consumer that the insight phase leaves running: without it, the
    # run used to wait its whole timeout for rows no one wrote.
    assert missing_prerequisites(["intake", "e2e"]) == ["e2e needs insight"]
    assert missing_prerequisites(["broker", "scaleout"]) == [
        "scaleout needs intake", "scaleout needs insight"]
    assert missing_prerequisites(["intake", "insight", "e2e", "scaleout"]) == []
