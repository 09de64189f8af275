"""The bench's steady rate counts a batch only with the time it took."""

from __future__ import annotations

import pytest

from golden_thread.bench.pipelines import PipelineRun, median_run
from golden_thread.bench.timing import median_ratio_round, steady_rate


def test_one_stamp_per_item_is_items_over_time() -> None:
    stamps = [i * 0.01 for i in range(1000)]  # 100 items per second
    assert steady_rate(stamps) == pytest.approx(100, rel=0.01)


def test_items_sharing_a_transaction_stamp_are_counted_with_their_batch() -> None:
    # 10 batches of 500, one every second (stamped with the transaction's start): 500/s.
    stamps = [float(batch) for batch in range(10) for _ in range(500)]
    assert steady_rate(stamps) == pytest.approx(500, rel=0.01)


def test_too_few_batches_use_the_whole_run_to_when_all_was_seen() -> None:
    stamps = [0.0] * 300 + [2.0] * 300
    assert steady_rate(stamps) == pytest.approx(150)
    assert steady_rate([5.0] * 400, end=7.0) == pytest.approx(200)
    assert steady_rate([1.0]) == 0.0 and steady_rate([1.0, 1.0]) == 0.0


def test_a_figure_taken_in_rounds_reports_the_median_round_and_every_rate() -> None:
    def run(rate: float, n: int, dead: int = 0, events: int = 6_804) -> PipelineRun:
        return PipelineRun("priority", f"priority-r{n}", 1, events, rate, dead, 5.0 + n)

    middle = median_run([run(5_000.0, 1), run(9_000.0, 2, dead=2), run(7_000.0, 3)])
    assert (middle.rate, middle.consumer, middle.seconds_to_first) == (7_000.0, "priority-r3", 8.0)
    detail = middle.detail()
    assert detail["rounds"] == [5_000, 9_000, 7_000]  # in the order run
    assert detail["round_events"] == [6_804, 6_804, 6_804]
    assert "median of 3 rounds" in detail["reported"]
    assert middle.dead_lettered == 2  # one round's dead letters are never hidden
    assert middle.short_rounds() is None
    assert median_run([run(4.0, 1), run(2.0, 2)]).consumer == "priority-r2"  # the lower middle

    alone = run(1.0, 1)
    assert median_run([alone]) is alone and "rounds" not in alone.detail()

    stalled = median_run([run(5.0, 1), run(6.0, 2, events=6_000), run(7.0, 3)])
    assert stalled.short_rounds() is not None and "[6804, 6000, 6804]" in stalled.short_rounds()


def test_the_e2e_figure_is_the_round_whose_ratio_is_the_median() -> None:
    # Session 9's final run: medians taken apart gave 64.93 / 20.61 = 3.15, a pairing no round had.
    rounds = [{"p99_ms": 44.49, "raw_p99_ms": 18.51}, {"p99_ms": 82.91, "raw_p99_ms": 20.61},
              {"p99_ms": 64.93, "raw_p99_ms": 26.38}]
    assert median_ratio_round(rounds, "p99_ms", "raw_p99_ms") is rounds[2]  # 2.40, 4.02, 2.46
    assert median_ratio_round(rounds[:2], "p99_ms", "raw_p99_ms") is rounds[0]  # lower middle
    assert median_ratio_round(rounds[1:2], "p99_ms", "raw_p99_ms") is rounds[1]
    with pytest.raises(ValueError, match="rounds"):
        median_ratio_round([], "p99_ms", "raw_p99_ms")
