"""The bundled MiniLM (the default --model) trained briefly on real public data from ../shared/data.

Each test trains one epoch on 200 examples and evaluates on 100-200, so together they take a few minutes
on two CPU cores. They check what only real data shows: SST-2 is learned above chance, sentence pairs,
regression and multi-label data go through end to end, and the saved folder works in `transformers.pipeline`
with the real label names. Skipped where ../shared/data is absent.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from nlp_transfer import RunConfig, fine_tune, load_classifier

BUNDLED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
# One short epoch: 200 examples in batches of 16 are 13 optimizer steps. At the strategy default (2e-5) the
# bundled model is still at chance on SST-2 after 13 steps (accuracy 0.50); at 1e-3 it reaches about 0.75.
BRIEF = {
    "max_train_samples": 200,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 16,
    "learning_rate": 1e-3,
    "disable_tqdm": True,
}


def _train(output_dir: Path, **options: Any):
    return fine_tune(RunConfig.from_dict({**BRIEF, **options, "output_dir": str(output_dir)}))


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _first_rows(path: Path, n: int) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row for _, row in zip(range(n), csv.DictReader(handle))]


def _is_fraction(value: Any) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


@pytest.mark.integration
def test_sst2_is_learned_and_the_folder_works_in_a_pipeline(shared_data: Path, tmp_path: Path) -> None:
    from transformers import pipeline

    out = tmp_path / "sst2"
    result = _train(
        out,
        train_file=str(shared_data / "sst2" / "train.csv"),
        validation_file=str(shared_data / "sst2" / "test.csv"),
        max_eval_samples=200,
        class_names="negative,positive",
        # 13 steps at 1e-3 (BRIEF) learn or not by the order of the first batches: shuffled ones, as measured.
        # (Length-grouped ones, the default, left this one seed at 0.55: a smoke test, not a comparison.)
        train_sampling_strategy="random",
    )
    metrics = _read_json(out / "metrics.json")
    assert metrics["task"] == "single_label"
    assert metrics["num_examples"] == {"train": 200, "validation": 200}
    assert metrics["labels"] == ["negative", "positive"]
    assert metrics["base_model"] == BUNDLED_HUB_ID
    accuracy = metrics["eval"]["accuracy"]
    assert _is_fraction(accuracy)
    assert accuracy > 0.6, f"SST-2 accuracy {accuracy:.3f} after 200 examples is no better than chance"
    assert result.metrics["eval"]["accuracy"] == accuracy

    config = _read_json(out / "config.json")
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert BUNDLED_HUB_ID in card
    assert "site-packages" not in card

    rows = _first_rows(shared_data / "sst2" / "test.csv", 24)
    texts = [r["text"] for r in rows] + ["a wonderful , moving film", "a dull , lifeless mess"]
    theirs = pipeline("text-classification", model=str(out), device="cpu")(texts)
    ours = load_classifier(out, device="cpu").predict(texts)
    assert {p["label"] for p in theirs} <= {"negative", "positive"}
    assert [p["label"] for p in ours] == [p["label"] for p in theirs]
    for mine, top in zip(ours, theirs):
        assert mine["score"] == pytest.approx(top["score"], abs=1e-5)


@pytest.mark.integration
def test_mrpc_sentence_pairs_report_accuracy_and_f1(shared_data: Path, tmp_path: Path) -> None:
    from transformers import pipeline

    out = tmp_path / "mrpc"
    _train(
        out,
        train_file=str(shared_data / "mrpc" / "train.csv"),
        validation_file=str(shared_data / "mrpc" / "test.csv"),
        max_eval_samples=100,
    )
    metrics = _read_json(out / "metrics.json")
    assert metrics["task"] == "single_label"
    assert metrics["labels"] == ["0", "1"]
    assert metrics["num_examples"] == {"train": 200, "validation": 100}
    assert _is_fraction(metrics["eval"]["accuracy"])
    assert _is_fraction(metrics["eval"]["f1"])
    assert _is_fraction(metrics["eval"]["macro_f1"])

    # The pair is encoded as a pair ([CLS] a [SEP] b [SEP]), exactly as the pipeline encodes text_pair.
    rows = _first_rows(shared_data / "mrpc" / "test.csv", 8)
    ours = load_classifier(out, device="cpu").predict(
        [r["sentence1"] for r in rows], text_pairs=[r["sentence2"] for r in rows]
    )
    classify = pipeline("text-classification", model=str(out), device="cpu")
    for row, mine in zip(rows, ours):
        top = classify({"text": row["sentence1"], "text_pair": row["sentence2"]})
        assert mine["label"] == top["label"]
        assert mine["score"] == pytest.approx(top["score"], abs=1e-5)


@pytest.mark.integration
def test_stsb_regression_reports_rmse_as_primary(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "stsb"
    _train(
        out,
        train_file=str(shared_data / "stsb" / "train.csv"),
        validation_file=str(shared_data / "stsb" / "test.csv"),
        max_eval_samples=100,
    )
    metrics = _read_json(out / "metrics.json")
    assert metrics["task"] == "regression"
    assert metrics["primary_metric"] == "rmse"
    assert metrics["greater_is_better"] is False
    mse, rmse = metrics["eval"]["mse"], metrics["eval"]["rmse"]
    assert isinstance(mse, float) and mse >= 0.0
    assert rmse == pytest.approx(math.sqrt(mse), rel=1e-9)
    assert _read_json(out / "config.json")["problem_type"] == "regression"

    rows = _first_rows(shared_data / "stsb" / "test.csv", 4)
    predictions = load_classifier(out, device="cpu").predict(
        [r["sentence1"] for r in rows], text_pairs=[r["sentence2"] for r in rows]
    )
    assert [set(p) for p in predictions] == [{"label", "score"}] * 4
    assert all(p["label"] == "score" and math.isfinite(p["score"]) for p in predictions)


@pytest.mark.integration
def test_goemotions_is_multi_label(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "goemotions"
    _train(
        out,
        train_file=str(shared_data / "goemotions" / "train.csv"),
        validation_file=str(shared_data / "goemotions" / "validation.csv"),
        label_separator=";",
        max_eval_samples=100,
    )
    metrics = _read_json(out / "metrics.json")
    names = (shared_data / "goemotions" / "labels.txt").read_text(encoding="utf-8").split()
    assert metrics["task"] == "multi_label"
    assert metrics["primary_metric"] == "micro_f1"
    assert 2 <= len(metrics["labels"]) <= 28
    assert set(metrics["labels"]) <= set(names)
    assert metrics["labels"] == sorted(metrics["labels"])
    assert _is_fraction(metrics["eval"]["micro_f1"])
    assert _is_fraction(metrics["eval"]["subset_accuracy"])

    config = _read_json(out / "config.json")
    assert config["problem_type"] == "multi_label_classification"
    assert list(config["id2label"].values()) == metrics["labels"]

    prediction = load_classifier(out, device="cpu").predict(["Thank you so much, this made my day!"])[0]
    assert set(prediction) == {"labels", "scores"}
    assert list(prediction["scores"]) == metrics["labels"]
    assert all(0.0 <= s <= 1.0 for s in prediction["scores"].values())


def _imbalanced_sst2(shared_data: Path, folder: Path, negatives: int = 270, positives: int = 30) -> dict[str, str]:
    """SST-2 reduced to 9 negatives per positive for training; a balanced validation set from GLUE dev."""
    with open(shared_data / "sst2" / "train.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if len(r["text"].split()) > 4]
    train = [r for r in rows if r["label"] == "0"][:negatives] + [r for r in rows if r["label"] == "1"][:positives]
    train = train[::2] + train[1::2]  # interleave a little; training shuffles anyway
    with open(shared_data / "sst2" / "test.csv", newline="", encoding="utf-8") as handle:
        dev = list(csv.DictReader(handle))
    validation = [r for r in dev if r["label"] == "0"][:100] + [r for r in dev if r["label"] == "1"][:100]
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, split in (("train", train), ("validation", validation)):
        path = folder / f"{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows({"text": r["text"], "label": r["label"]} for r in split)
        files[f"{name}_file"] = str(path)
    return files


@pytest.mark.integration
def test_balanced_class_weights_raise_minority_recall_on_imbalanced_sst2(shared_data: Path, tmp_path: Path) -> None:
    files = _imbalanced_sst2(shared_data, tmp_path / "data")
    # Top two layers and the head, 3 epochs: at BRIEF's single epoch the minority recall of either run
    # depends on the order of the examples; with these settings it was 0.0 unweighted, 0.39-0.70 weighted
    # over seeds 1 and 2 (full fine-tuning at 3e-4 x 2 epochs: 0.0 vs 0.27-0.94).
    options = {
        **files,
        "class_names": "negative,positive",
        "max_train_samples": None,
        "strategy": "freeze",
        "num_train_epochs": 3,
        "seed": 1,
        # Measured with the architecture's own head and a random start; the bundled MiniLM's default
        # (mean pooling, a probe-fitted head) already gives the minority class 0.5 recall unweighted.
        "pooling": "pooler",
        # And with shuffled batches: in length-grouped ones (the default since) the unweighted run already
        # recalls 0.56 of the minority (weighted 0.72).
        "train_sampling_strategy": "random",
    }
    plain = _read_json(_train(tmp_path / "plain", **options).metrics_path)
    weighted = _read_json(_train(tmp_path / "weighted", class_weights="balanced", **options).metrics_path)

    # 270:30 training labels: the primary metric is MCC, and the reason says why.
    for metrics in (plain, weighted):
        assert metrics["train_label_counts"] == {"negative": 270, "positive": 30}
        assert metrics["primary_metric"] == "mcc"
        assert "9.0" in metrics["primary_metric_reason"]
    assert plain["class_weights"] is None
    assert weighted["class_weights"] == {
        "kind": "class_weight",
        "mode": "balanced",
        "weights": {"negative": pytest.approx(300 / (2 * 270)), "positive": pytest.approx(300 / (2 * 30))},
    }
    # Same seed, same data: only the loss weights differ. Unweighted, the minority class is drowned out.
    plain_recall = plain["eval"]["per_class"]["positive"]["recall"]
    weighted_recall = weighted["eval"]["per_class"]["positive"]["recall"]
    assert weighted_recall > plain_recall + 0.2, (plain_recall, weighted_recall)
    assert weighted["eval"]["balanced_accuracy"] > plain["eval"]["balanced_accuracy"]
