"""`nlp-transfer benchmark` on a tiny setting: every run on the same rows, the ratios and shares from the records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp_transfer.cli.app import main
from nlp_transfer.experiments import benchmark
from nlp_transfer.experiments.benchmark import BenchmarkSettings, matmul_peak, run_benchmark


def test_the_matmul_peak_is_a_positive_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmark, "PEAK_SIZE", 128)
    monkeypatch.setattr(benchmark, "PEAK_SECONDS", 0.05)
    assert 1e6 < matmul_peak() < 1e15


def test_a_tiny_benchmark_times_each_strategy_against_the_peer(
    tiny_checkpoint: Path, sentiment_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(benchmark, "PEAK_SIZE", 256)
    monkeypatch.setattr(benchmark, "PEAK_SECONDS", 0.2)
    settings = BenchmarkSettings(
        output_dir=tmp_path / "bench",
        model=str(tiny_checkpoint),
        train_file=str(sentiment_files["train"]),
        validation_file=str(sentiment_files["validation"]),
        max_train_samples=16,
        num_train_epochs=1,
        strategies=("full",),  # each run is a fresh process (~15 s of imports): one strategy and the peer
        predict_texts=8,
    )
    results = run_benchmark(settings, progress=False)
    saved = json.loads((tmp_path / "bench" / "benchmark.json").read_text(encoding="utf-8"))
    assert saved["rows"] == results["rows"]
    peer, full = results["rows"]
    assert peer["run"].startswith("peer") and full["run"] == "full"
    assert full["speed_vs_peer"] == round(full["train_samples_per_s"] / peer["train_samples_per_s"], 2)

    # Every run trained on the one draw of 16 rows, written once.
    drawn = (tmp_path / "bench" / "data" / "train.csv").read_text(encoding="utf-8").splitlines()
    assert len(drawn) == 1 + 16
    record = results["runs"]["full"]["record"]
    assert record["num_examples"]["train"] == 16 and record["training_cost"]["sequences"] == 16
    assert results["runs"]["peer"]["training_cost"]["sequences"] == 16
    assert results["runs"]["peer"]["training_cost"]["padded_tokens"] == 16 * 128  # padded to 128 tokens

    cost = results["runs"]["full"]["record"]["training_cost"]
    peak = results["matmul_peak_gflop_per_s"] * 1e9
    assert full["steps_peak_share"] == pytest.approx(cost["flops"] / cost["steps_s"] / peak, abs=2e-3)
    assert full["padding_share"] == round(1 - cost["real_tokens"] / cost["padded_tokens"], 3)
    assert results["pipeline"]["same_labels"] is True and results["pipeline"]["batch_32"] > 0
    markdown = (tmp_path / "bench" / "benchmark.md").read_text(encoding="utf-8")
    assert "| run | train_samples_per_s | speed_vs_peer |" in markdown and "transformers.pipeline" in markdown


def test_unknown_strategies_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["benchmark", "--output-dir", str(tmp_path), "--strategies", "full,fast"]) == 2
    assert "--strategies 'full,fast': give strategy names from full" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_levers_time_full_on_the_side_its_defaults_do_not_take() -> None:
    # 2,000 rows train at batch 32 by default (recipes.batch_size), in length-grouped batches, word embeddings trained.
    assert benchmark.lever_runs(2000) == {
        "full, batch 8": {"per_device_train_batch_size": 8},
        "full, random order": {"train_sampling_strategy": "random"},
        "full, frozen word embeddings": {"freeze_word_embeddings": True},
        "full, torch.compile": {"torch_compile": True},
    }
    assert "full, batch 32" in benchmark.lever_runs(100)  # few rows train at batch 8: the other side is 32
