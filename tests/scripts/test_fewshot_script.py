"""scripts/benchmark_fewshot.py: balanced, seeded draws shared by every system, and its summary table."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import ModuleType

from conftest import load_script


def _script() -> ModuleType:
    return load_script("benchmark_fewshot")


ROWS = [{"text": f"text {i}", "label": label} for i, label in enumerate(["a"] * 30 + ["b"] * 10 + ["c"] * 20)]


def test_a_draw_has_the_same_number_of_rows_per_class_and_depends_only_on_the_seed() -> None:
    draw = _script().balanced_draw
    first = draw(ROWS, 12, seed=1)
    assert Counter(row["label"] for row in first) == {"a": 4, "b": 4, "c": 4}
    assert len({row["text"] for row in first}) == 12
    assert draw(ROWS, 12, seed=1) == first
    assert draw(ROWS, 12, seed=2) != first


def test_a_fixed_test_subset_is_the_same_every_time(tmp_path: Path) -> None:
    script = _script()
    source = script.write_rows(tmp_path / "test.csv", ROWS)
    assert script.fixed_test(source, tmp_path / "a", None) == source
    first = script.read_rows(script.fixed_test(source, tmp_path / "a", 7))
    second = script.read_rows(script.fixed_test(source, tmp_path / "b", 7))
    assert first == second and len(first) == 7


def test_the_summary_has_mean_and_std_over_seeds() -> None:
    results = [
        {
            "dataset": "sst2",
            "size": 16,
            "seed": seed,
            "system": "setfit",
            "accuracy": acc,
            "macro_f1": 0.5,
            "train_s": 10,
        }
        for seed, acc in enumerate([0.6, 0.8])
    ]
    assert _script().summary_rows(results) == [["sst2", "16", "setfit", "0.700 +- 0.141", "0.500 +- 0.000", "10", "2"]]
