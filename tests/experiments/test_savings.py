"""What transfer saves, on hand-made grid results: data-reduction factors, iteration reduction, recommendations."""

from __future__ import annotations

from typing import Any

import pytest

from nlp_transfer.experiments.savings import (
    Scores,
    data_reduction,
    iteration_reduction,
    recommendations,
    reduction_against_best_scratch,
    steps_to_reach,
)

ACCURACY = Scores("eval", "accuracy")
MSE = Scores("eval", "mse", greater_is_better=False)


def _entry(strategy: str, size: int, mean: float, std: float | None = 0.01, **extra: Any) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "train_size": size,
        "train_rows_mean": size,
        "eval_accuracy_mean": mean,
        "eval_accuracy_std": std,
        **extra,
    }


SUMMARY = [
    _entry("full", 16, 0.70),
    _entry("full", 64, 0.80),
    _entry("full", 256, 0.95),
    _entry("scratch", 16, 0.50),
    _entry("scratch", 64, 0.60),
    _entry("scratch", 256, 0.72),
    _entry("scratch", 1024, 0.81),
]


def test_data_reduction_is_the_smallest_scratch_size_reaching_transfer_divided_by_n() -> None:
    factors = data_reduction(SUMMARY, ACCURACY, [])
    # full at 16 (0.70): scratch first reaches it at 256 -> 16x; full at 64 (0.80): at 1024 -> 16x;
    # full at 256 (0.95): scratch never does within the grid; its largest size is 1024 -> "more than 4x".
    assert factors == {0: "16x", 1: "16x", 2: "more than 4x"}
    # full at 2048, beyond scratch's largest size, unreached: no bound worth a number.
    beyond = data_reduction([*SUMMARY, _entry("full", 2048, 0.97)], ACCURACY, [])
    assert beyond[7] == "unknown (scratch ran up to 1024 rows)"


def test_data_reduction_needs_scratch_and_reads_lower_is_better_metrics() -> None:
    assert data_reduction([_entry("full", 16, 0.7), _entry("lora", 16, 0.6)], ACCURACY, []) == {}
    summary = [
        {"strategy": "full", "train_size": 10, "train_rows_mean": 10, "eval_mse_mean": 1.0},
        {"strategy": "scratch", "train_size": 10, "train_rows_mean": 10, "eval_mse_mean": 2.0},
        {"strategy": "scratch", "train_size": 50, "train_rows_mean": 50, "eval_mse_mean": 0.9},
    ]
    assert data_reduction(summary, MSE, []) == {0: "5x"}


def test_steps_to_reach_is_the_first_step_at_or_past_the_target() -> None:
    curve = [{"step": 10, "value": 0.5}, {"step": 20, "value": 0.9}, {"step": 30, "value": 0.95}]
    assert steps_to_reach(curve, 0.9, ACCURACY) == 20
    assert steps_to_reach(curve, 0.99, ACCURACY) is None
    assert steps_to_reach([{"step": 5, "value": 2.0}, {"step": 9, "value": 1.0}], 1.05, MSE) == 9


def test_iteration_reduction_against_scratch_with_never_reached_cases() -> None:
    summary = [_entry("full", 64, 0.90), _entry("lora", 64, 0.80), _entry("scratch", 64, 0.70)]
    rows = [
        {"cell": "f0", "strategy": "full", "train_size": 64},
        {"cell": "f1", "strategy": "full", "train_size": 64},
        {"cell": "l0", "strategy": "lora", "train_size": 64},
        {"cell": "s0", "strategy": "scratch", "train_size": 64},
    ]
    # target = 0.95 x 0.90 (the best mean at this size) = 0.855
    curves = {
        "f0": [{"step": 10, "value": 0.86}],
        "f1": [{"step": 10, "value": 0.5}, {"step": 30, "value": 0.9}],
        "l0": [{"step": 40, "value": 0.8}],
        "s0": [{"step": 50, "value": 0.7}, {"step": 80, "value": 0.86}],
    }
    figures = iteration_reduction(summary, rows, curves, ACCURACY, [])
    assert figures[0]["target"] == pytest.approx(0.855)
    assert figures[0]["steps_to_target"] == 20 and figures[0]["seeds_reached"] == "2/2"
    assert figures[0]["iteration_reduction"] == "75%"  # 1 - 20 / 80
    assert figures[1]["steps_to_target"] is None and figures[1]["iteration_reduction"] == "never reached it"
    assert figures[2]["steps_to_target"] == 80 and "iteration_reduction" not in figures[2]

    # Runs that record their batch size compare training examples: scratch's 80 steps at batch 32 are 16x
    # full's 20 steps at batch 8 in examples, not 4x.
    for row in rows:
        row["batch_size"] = 32 if row["strategy"] == "scratch" else 8
    figures = iteration_reduction(summary, rows, curves, ACCURACY, [])
    assert figures[0]["examples_to_target"] == 160 and figures[2]["examples_to_target"] == 2560
    assert figures[0]["steps_to_target"] == 20 and figures[0]["iteration_reduction"] == "94%"  # 1 - 160 / 2560

    curves["s0"] = [{"step": 80, "value": 0.7}]
    assert iteration_reduction(summary, rows, curves, ACCURACY, [])[0]["iteration_reduction"] == (
        "scratch never reached it"
    )


def test_iteration_reduction_against_scratchs_best_score_at_any_size() -> None:
    """Transfer at 16 and 64 rows against scratch's best (at 1024 rows, batch 32): target 0.95 x 0.80 = 0.76."""
    summary = [
        _entry("full", 16, 0.70),
        _entry("full", 64, 0.85),
        _entry("scratch", 64, 0.60),
        _entry("scratch", 1024, 0.80),
    ]
    rows = [
        {"cell": "f16", "strategy": "full", "train_size": 16, "batch_size": 8},
        {"cell": "f64a", "strategy": "full", "train_size": 64, "batch_size": 8},
        {"cell": "f64b", "strategy": "full", "train_size": 64, "batch_size": 8},
        {"cell": "s64", "strategy": "scratch", "train_size": 64, "batch_size": 32},
        {"cell": "s1024", "strategy": "scratch", "train_size": 1024, "batch_size": 32},
    ]
    curves = {
        "f16": [{"step": 10, "value": 0.70}],
        "f64a": [{"step": 10, "value": 0.70}, {"step": 20, "value": 0.77}],
        "f64b": [{"step": 40, "value": 0.80}],
        "s64": [{"step": 50, "value": 0.60}],
        "s1024": [{"step": 100, "value": 0.75}, {"step": 200, "value": 0.76}],
    }
    figures = reduction_against_best_scratch(summary, rows, curves, ACCURACY, [])
    assert set(figures) == {0, 1}, "scratch entries get no figure of their own"
    assert figures[1]["scratch_target"] == pytest.approx(0.76)
    # full at 64: (20 + 40) / 2 = 30 steps x 8 = 240 examples; scratch at 1024: 200 steps x 32 = 6400 -> 1 - 240/6400
    assert figures[1]["steps_to_scratch_target"] == 30 and figures[1]["iteration_reduction_vs_best_scratch"] == "96%"
    assert figures[1]["seeds_reached_scratch_target"] == "2/2" and figures[0]["steps_to_scratch_target"] is None
    assert figures[0]["iteration_reduction_vs_best_scratch"] == "never reached it"
    assert reduction_against_best_scratch(summary[:2], rows, curves, ACCURACY, []) == {}, "no scratch, no figure"
    # Scratch equally good at 64 and 1024 rows (stuck at chance, say): the figure is set against the larger size.
    tied = [*summary[:2], _entry("scratch", 64, 0.80), summary[3]]
    curves["s64"] = [{"step": 5, "value": 0.80}]
    assert reduction_against_best_scratch(tied, rows, curves, ACCURACY, [])[1][
        "iteration_reduction_vs_best_scratch"
    ] == ("96%")


@pytest.mark.parametrize(("scratch_steps", "text"), [(100, "75%"), (500, "95%"), (4000, "99.3%"), (100_000, "99.9%")])
def test_reductions_from_99_percent_keep_a_decimal_rounded_down(scratch_steps: int, text: str) -> None:
    """25 steps against scratch's: 1 - 25/4000 = 99.375% -> 99.3%; 1 - 25/100000 = 99.975% -> 99.9%, never 100%."""
    summary = [_entry("full", 64, 0.9), _entry("scratch", 64, 0.5)]
    rows = [{"cell": "f", "strategy": "full", "train_size": 64}, {"cell": "s", "strategy": "scratch", "train_size": 64}]
    curves = {"f": [{"step": 25, "value": 0.9}], "s": [{"step": scratch_steps, "value": 0.9}]}
    assert iteration_reduction(summary, rows, curves, ACCURACY, [])[0]["iteration_reduction"] == text


def test_the_target_of_a_metric_near_zero_stays_below_the_best() -> None:
    assert Scores("eval", "mcc").target(-0.2, 0.95) == pytest.approx(-0.21)
    assert Scores("eval", "mcc").target(0.6, 0.95) == pytest.approx(0.57)
    assert MSE.target(1.0, 0.95) == pytest.approx(1.05)


def test_recommendation_weighs_the_lead_against_the_seed_spread() -> None:
    clear = [_entry("full", 64, 0.80, 0.01), _entry("lora", 64, 0.75, 0.02)]
    close = [_entry("full", 16, 0.70, 0.05), _entry("lora", 16, 0.68, 0.03)]
    single = [_entry("full", 8, 0.6, None), _entry("lora", 8, 0.5, None)]
    assert recommendations(clear + close + single, ACCURACY, []) == [
        "64 training rows: full (0.8000 +- 0.0100) leads lora (0.7500 +- 0.0200) by 0.0500, more than the seed "
        "spread (0.0200).",
        "16 training rows: full (0.7000 +- 0.0500) leads lora (0.6800 +- 0.0300) by 0.0200, within the seed "
        "spread (0.0500): no clear winner.",
        "8 training rows: full (0.6000) leads lora (0.5000) by 0.1000; one seed, so no spread to weigh it against.",
    ]
