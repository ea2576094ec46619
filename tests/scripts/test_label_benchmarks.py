"""scripts/benchmark_active_learning.py and scripts/benchmark_audit.py: their pools, planted flips and the figures of
a round that has labels of one class only."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import ModuleType

import pandas as pd
from conftest import load_script, write_csv


def _script(name: str) -> ModuleType:
    return load_script(name)


def _sst2_like(root: Path) -> Path:
    rows = [{"text": f"sentence {i}", "label": str(int(i % 3 == 0))} for i in range(300)]
    write_csv(root / "sst2" / "train.csv", rows)
    return root


def test_the_imbalanced_pool_has_one_positive_per_nine_negatives_and_depends_only_on_the_seed(tmp_path: Path) -> None:
    make_pool = _script("benchmark_active_learning").make_pool
    pool = make_pool("sst2_imbalanced", _sst2_like(tmp_path), 100, seed=3)
    assert Counter(row["label"] for row in pool) == {"1": 10, "0": 90}
    assert len({row["text"] for row in pool}) == 100
    assert make_pool("sst2_imbalanced", tmp_path, 100, seed=3) == pool
    assert make_pool("sst2_imbalanced", tmp_path, 100, seed=4) != pool


def test_a_round_with_labels_of_one_class_scores_as_that_class_everywhere(tmp_path: Path) -> None:
    test = write_csv(tmp_path / "test.csv", [{"text": str(i), "label": str(int(i < 3))} for i in range(10)])
    figures = _script("benchmark_active_learning").single_class_figures("0", test)
    assert figures["accuracy"] == 0.7  # 7 of the 10 test rows are '0'
    assert abs(figures["macro_f1"] - (2 * 0.7 / 1.7) / 2) < 1e-12  # class 0: precision 0.7, recall 1; class 1: 0
    assert "one class" in figures["note"]


def test_the_noisy_file_flips_exactly_the_share_asked_to_another_class(tmp_path: Path) -> None:
    rows = [{"text": f"news {i}", "label": ["World", "Sports", "Business", "Sci/Tech"][i % 4]} for i in range(200)]
    write_csv(tmp_path / "data" / "ag_news" / "train.csv", rows)
    clean, noisy, flipped = _script("benchmark_audit").noisy_file(tmp_path / "data", tmp_path / "out", 100, 0.1)
    clean_table, noisy_table = pd.read_csv(clean), pd.read_csv(noisy)
    assert list(clean_table["text"]) == list(noisy_table["text"])
    differing = {i + 1 for i in range(100) if clean_table["label"][i] != noisy_table["label"][i]}
    assert differing == flipped and len(flipped) == 10
