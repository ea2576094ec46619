"""Evaluation end to end: plots, the primary metric's choice, reported metrics, thresholds, class weights, evaluate.

Each trained folder comes from a module-scoped fixture (one short run of the session's tiny BERT), shared by
the read-only tests. Numbers in metrics.json are checked against scikit-learn recomputed from the reloaded
folder's own logits, so a report that does not describe the saved model fails.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import NEGATIVE, POSITIVE, sentiment_rows, write_csv
from PIL import Image
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.utils.class_weight import compute_class_weight

from nlp_transfer import RunConfig, UserInputError, fine_tune, load_classifier
from nlp_transfer.cli.app import main
from nlp_transfer.evaluation.metrics import available_metrics
from nlp_transfer.inference.folder_evaluation import evaluate_folder
from nlp_transfer.training.trainer import TransferTrainer

FAST = {"disable_tqdm": True, "learning_rate": 1e-3, "num_train_epochs": 1}
BINARY = ["negative", "positive"]
PLOTS = ("confusion_matrix.png", "calibration.png")


# ------------------------------------------------------------------------------------------- helpers


def _train(tiny_checkpoint: Path, root: Path, train: list[dict], validation: list[dict], **options: Any):
    files = {
        "train": write_csv(root / "data" / "train.csv", train),
        "validation": write_csv(root / "data" / "validation.csv", validation),
    }
    out = root / "out"
    config = {
        "model": str(tiny_checkpoint),
        "train_file": str(files["train"]),
        "validation_file": str(files["validation"]),
        "output_dir": str(out),
        **FAST,
        **options,
    }
    return {"root": root, "files": files, "out": out, "result": fine_tune(RunConfig.from_dict(config))}


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logits.astype(np.float64)))


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """Run `nlp-transfer ARGV` in-process: (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exit_info:  # argparse usage errors
            code = exit_info.code
    return code, stdout.getvalue(), stderr.getvalue()


def _squash(text: str) -> str:
    return "".join(text.split())


def _assert_nothing_written(parent: Path, out: Path) -> None:
    assert not out.exists()
    assert sorted(p.name for p in parent.iterdir() if p.name.startswith(".")) == [], "no staging folder left"


def _with_thresholds(source: Path, target: Path, thresholds: dict[str, float]) -> Path:
    """A copy of a trained folder whose config.json carries these decision thresholds."""
    shutil.copytree(source, target)
    config = _read_json(target / "config.json")
    config["nlp_transfer"]["thresholds"] = thresholds
    (target / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return target


def _noisy_sentiment_rows(n_per_class: int) -> list[dict]:
    """Sentiment rows with every fourth label flipped: no model scores 0 or 1 on them by text alone."""
    rows = sentiment_rows(n_per_class)
    for i in range(3, len(rows), 4):
        rows[i] = {**rows[i], "label": "negative" if rows[i]["label"] == "positive" else "positive"}
    return rows


def _imbalanced_rows(negatives: int, positives: int) -> list[dict]:
    rows = [{"text": f"{NEGATIVE[i % 4]} {i}", "label": "negative"} for i in range(negatives)]
    rows += [{"text": f"{POSITIVE[i % 4]} {i}", "label": "positive"} for i in range(positives)]
    return rows


ML_PATTERN = ["joy;love", "joy", "anger", "", "anger;sadness", "love;joy", "sadness", "joy;sadness"]
ML_LABELS = ["anger", "joy", "love", "sadness"]


def _multi_label_rows(n: int, shift: int = 0) -> list[dict]:
    return [{"text": f"message number {i} about feelings", "labels": ML_PATTERN[(i + shift) % 8]} for i in range(n)]


# ------------------------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """Balanced binary labels, default options, two epochs."""
    root = tmp_path_factory.mktemp("plain")
    return _train(tiny_checkpoint, root, sentiment_rows(12), sentiment_rows(4), num_train_epochs=2)


@pytest.fixture(scope="module")
def imbalanced_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """16 negative and 4 positive training rows (ratio 4.0), with balanced class weights."""
    root = tmp_path_factory.mktemp("imbalanced")
    return _train(tiny_checkpoint, root, _imbalanced_rows(16, 4), sentiment_rows(4), class_weights="balanced")


@pytest.fixture(scope="module")
def three_class_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """Three classes, one rare: 8 billing, 8 shipping, 2 refund."""
    root = tmp_path_factory.mktemp("three-class")
    topics = {"billing": "charged twice on my card", "shipping": "parcel still not delivered", "refund": "money back"}
    counts = {"billing": 8, "shipping": 8, "refund": 2}
    train = [{"text": f"{topics[label]} {i}", "label": label} for label, n in counts.items() for i in range(n)]
    validation = [{"text": f"{topics[label]} again {i}", "label": label} for label in topics for i in range(2)]
    return _train(tiny_checkpoint, root, train, validation)


@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """Multi-label (';'-separated) with tuned thresholds and balanced pos_weight."""
    root = tmp_path_factory.mktemp("multi-label")
    return _train(
        tiny_checkpoint,
        root,
        _multi_label_rows(24),
        _multi_label_rows(8, shift=3),
        label_separator=";",
        tune_threshold=True,
        class_weights="balanced",
    )


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("regression")
    train = [{"text": r["text"], "label": 4.5 if r["label"] == "positive" else 0.25} for r in sentiment_rows(12)]
    validation = [{"text": r["text"], "label": 3.75 if r["label"] == "positive" else 1.5} for r in sentiment_rows(4)]
    return _train(tiny_checkpoint, root, train, validation)


@pytest.fixture(scope="module")
def f1_tuned_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """Binary, --metric-for-best-model f1 and --tune-threshold."""
    root = tmp_path_factory.mktemp("f1-tuned")
    return _train(
        tiny_checkpoint, root, sentiment_rows(12), sentiment_rows(4), metric_for_best_model="f1", tune_threshold=True
    )


@pytest.fixture(scope="module")
def log_loss_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """Binary, --metric-for-best-model log_loss and --metrics accuracy,mcc."""
    root = tmp_path_factory.mktemp("log-loss")
    return _train(
        tiny_checkpoint,
        root,
        sentiment_rows(12),
        sentiment_rows(4),
        metric_for_best_model="log_loss",
        metrics="accuracy,mcc",
    )


@pytest.fixture(scope="module")
def selected_metrics_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """Binary, --metrics accuracy,mcc (the automatic primary, accuracy, among them) and --class-weights 1,3."""
    root = tmp_path_factory.mktemp("selected-metrics")
    return _train(
        tiny_checkpoint, root, sentiment_rows(12), sentiment_rows(4), metrics="accuracy,mcc", class_weights="1,3"
    )


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("lora")
    return _train(tiny_checkpoint, root, sentiment_rows(12), sentiment_rows(4), strategy="lora")


# ---------------------------------------------------------------------- 1. plots and the eval report


def test_classification_run_writes_png_plots(plain_run: dict[str, Any]) -> None:
    out: Path = plain_run["out"]
    metrics = _read_json(out / "metrics.json")
    assert metrics["plots"] == {"split": "validation", "confusion_matrix": PLOTS[0], "calibration": PLOTS[1]}
    for name in PLOTS:
        with Image.open(out / name) as image:
            assert image.format == "PNG"
            assert image.size[0] > 100 and image.size[1] > 100


def test_eval_report_matches_sklearn_on_the_reloaded_model(plain_run: dict[str, Any]) -> None:
    out: Path = plain_run["out"]
    metrics = _read_json(out / "metrics.json")
    rows = _read_rows(plain_run["files"]["validation"])
    classifier = load_classifier(out, device="cpu")
    assert classifier.labels == BINARY
    predicted = classifier.logits([r["text"] for r in rows]).argmax(axis=1)
    truth = np.array([BINARY.index(r["label"]) for r in rows])
    evaluation = metrics["eval"]

    assert evaluation["num_examples"] == len(rows)
    assert evaluation["confusion_matrix"] == confusion_matrix(truth, predicted, labels=[0, 1]).tolist()
    assert evaluation["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=[0, 1], average=None, zero_division=0
    )
    assert list(evaluation["per_class"]) == BINARY
    for i, label in enumerate(BINARY):
        row = evaluation["per_class"][label]
        assert row["precision"] == pytest.approx(precision[i], abs=1e-12)
        assert row["recall"] == pytest.approx(recall[i], abs=1e-12)
        assert row["f1"] == pytest.approx(f1[i], abs=1e-12)
        assert row["support"] == support[i]
    assert sum(bin_["count"] for bin_ in evaluation["calibration"]) == len(rows)
    assert isinstance(evaluation["loss"], float)


# ------------------------------------------------------------------------------- 2. primary metric


@pytest.mark.parametrize(
    ("run", "primary", "greater_is_better", "reason_says"),
    [
        ("plain_run", "accuracy", True, "balanced"),
        ("imbalanced_run", "mcc", True, "4.0"),
        ("three_class_run", "macro_f1", True, "3 classes"),
        ("multi_label_run", "micro_f1", True, "multi-label"),
        ("regression_run", "rmse", False, "regression"),
    ],
)
def test_primary_metric_is_chosen_from_the_task_and_labels(
    request: pytest.FixtureRequest, run: str, primary: str, greater_is_better: bool, reason_says: str
) -> None:
    trained = request.getfixturevalue(run)
    out: Path = trained["out"]
    metrics = _read_json(out / "metrics.json")
    assert metrics["primary_metric"] == primary
    assert metrics["greater_is_better"] is greater_is_better
    assert reason_says in metrics["primary_metric_reason"]
    assert primary in metrics["eval"]
    training = _read_json(out / "run_config.json")["training"]
    assert training["metric_for_best_model"] == primary
    assert training["greater_is_better"] is greater_is_better
    assert _read_json(out / "config.json")["nlp_transfer"]["primary_metric"] == primary


@pytest.mark.parametrize("run", ["plain_run", "imbalanced_run", "three_class_run"])
def test_train_label_counts_match_the_training_file(request: pytest.FixtureRequest, run: str) -> None:
    trained = request.getfixturevalue(run)
    counts = Counter(r["label"] for r in _read_rows(trained["files"]["train"]))
    metrics = _read_json(trained["out"] / "metrics.json")
    assert metrics["train_label_counts"] == dict(sorted(counts.items()))
    assert list(metrics["train_label_counts"]) == metrics["labels"]


def test_train_label_counts_multi_label_and_regression(
    multi_label_run: dict[str, Any], regression_run: dict[str, Any]
) -> None:
    rows = _read_rows(multi_label_run["files"]["train"])
    positives = Counter(name for r in rows for name in r["labels"].split(";") if name)
    metrics = _read_json(multi_label_run["out"] / "metrics.json")
    assert metrics["train_label_counts"] == {label: positives[label] for label in ML_LABELS}
    assert "train_label_counts" not in _read_json(regression_run["out"] / "metrics.json")


# ------------------------------------------------------------------------ 3. --metric-for-best-model


def test_metric_for_best_model_overrides_the_choice(f1_tuned_run: dict[str, Any]) -> None:
    out: Path = f1_tuned_run["out"]
    metrics = _read_json(out / "metrics.json")
    assert metrics["primary_metric"] == "f1"
    assert metrics["greater_is_better"] is True
    assert "given by --metric-for-best-model" in metrics["primary_metric_reason"]
    assert _read_json(out / "run_config.json")["training"]["metric_for_best_model"] == "f1"


def test_lower_is_better_metric_for_best_model(log_loss_run: dict[str, Any]) -> None:
    out: Path = log_loss_run["out"]
    metrics = _read_json(out / "metrics.json")
    assert metrics["primary_metric"] == "log_loss"
    assert metrics["greater_is_better"] is False
    training = _read_json(out / "run_config.json")["training"]
    assert (training["metric_for_best_model"], training["greater_is_better"]) == ("log_loss", False)


def _bad_run_options(tiny_checkpoint: Path, root: Path, rows: list[dict] | None = None, **options: Any):
    rows = rows or sentiment_rows(6)
    files = {"train": write_csv(root / "train.csv", rows), "validation": write_csv(root / "validation.csv", rows)}
    out = root / "out"
    config = {
        "model": str(tiny_checkpoint),
        "train_file": str(files["train"]),
        "validation_file": str(files["validation"]),
        "output_dir": str(out),
        **FAST,
        **options,
    }
    return RunConfig.from_dict(config), out


def test_unknown_metric_for_best_model_is_refused_when_the_options_are_built(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    with pytest.raises(UserInputError, match="--metric-for-best-model nope is not a metric the package reports"):
        _bad_run_options(tiny_checkpoint, tmp_path, metric_for_best_model="nope")
    assert not (tmp_path / "out").exists()


def test_a_metric_of_another_task_is_a_user_error_before_training(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_training(self, *args, **kwargs):
        raise AssertionError("training started with a metric_for_best_model of another task")

    monkeypatch.setattr(TransferTrainer, "train", no_training)
    config, out = _bad_run_options(tiny_checkpoint, tmp_path, metric_for_best_model="rmse")
    with pytest.raises(UserInputError, match="--metric-for-best-model rmse is not a metric of this single_label task"):
        fine_tune(config)
    _assert_nothing_written(tmp_path, out)


# ------------------------------------------------------------------------------------- 4. --metrics


@pytest.mark.parametrize(
    ("run", "reported"),
    [("selected_metrics_run", ["accuracy", "mcc"]), ("log_loss_run", ["log_loss", "accuracy", "mcc"])],
)
def test_metrics_option_limits_the_reported_metrics(
    request: pytest.FixtureRequest, run: str, reported: list[str]
) -> None:
    metrics = _read_json(request.getfixturevalue(run)["out"] / "metrics.json")
    assert metrics["reported_metrics"] == reported
    shipped = set(available_metrics("single_label", 2))
    assert set(metrics["eval"]) & shipped == set(reported)
    assert {"per_class", "confusion_matrix", "calibration", "num_examples", "loss"} <= set(metrics["eval"])


def test_default_run_reports_every_shipped_metric(plain_run: dict[str, Any]) -> None:
    metrics = _read_json(plain_run["out"] / "metrics.json")
    shipped = available_metrics("single_label", 2)
    assert metrics["reported_metrics"] == shipped
    assert set(shipped) - set(metrics["eval"]) == set(metrics["eval"].get("undefined", {}))


def test_unknown_metric_offline_is_a_user_error(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with pytest.raises(UserInputError, match="nope_metric_xyz"):  # refused with the options, before any work
        _bad_run_options(tiny_checkpoint, tmp_path, metrics="accuracy,nope_metric_xyz")
    _assert_nothing_written(tmp_path, tmp_path / "out")


# ----------------------------------------------------------------------------- 5. decision thresholds


def test_binary_threshold_is_tuned_saved_and_used(f1_tuned_run: dict[str, Any], tmp_path: Path) -> None:
    out: Path = f1_tuned_run["out"]
    metrics = _read_json(out / "metrics.json")
    tuned = metrics["decision_thresholds"]
    assert list(tuned["values"]) == ["positive"]
    threshold = tuned["values"]["positive"]
    assert 0.0 < threshold < 1.0
    assert (tuned["metric"], tuned["tuned_on"]) == ("f1", "validation")
    assert tuned["validation_after"] >= tuned["validation_before"]
    assert tuned["validation_after"] == pytest.approx(metrics["eval"]["f1"], abs=1e-12)
    assert _read_json(out / "config.json")["nlp_transfer"]["thresholds"] == tuned["values"]

    rows = _read_rows(f1_tuned_run["files"]["validation"])
    texts = [r["text"] for r in rows] + ["great product", "awful and slow", "fine I guess"]
    classifier = load_classifier(out, device="cpu")
    assert classifier.thresholds == tuned["values"]
    p_positive = _softmax(classifier.logits(texts))[:, 1]
    expected = ["positive" if p >= threshold else "negative" for p in p_positive]
    assert [p["label"] for p in classifier.predict(texts)] == expected

    # The saved threshold is what validation accuracy in metrics.json was measured with.
    report = evaluate_folder(out, str(f1_tuned_run["files"]["validation"]))
    assert report.thresholds == tuned["values"]
    assert report.report.metrics["accuracy"] == pytest.approx(metrics["eval"]["accuracy"], abs=1e-12)
    truth = [r["label"] for r in rows]
    assert metrics["eval"]["accuracy"] == pytest.approx(accuracy_score(truth, expected[: len(rows)]), abs=1e-12)

    # A threshold placed so that it disagrees with argmax on at least one text is obeyed by predict and evaluate.
    below = sorted(p for p in p_positive if p < 0.5)
    cut = float(below[-1] - 1e-6) if below else float(min(p_positive) + 1e-6)
    moved = load_classifier(_with_thresholds(out, tmp_path / "moved", {"positive": cut}), device="cpu")
    moved_expected = ["positive" if p >= cut else "negative" for p in p_positive]
    assert moved_expected != [BINARY[i] for i in (p_positive >= 0.5).astype(int)]
    assert [p["label"] for p in moved.predict(texts)] == moved_expected
    moved_report = evaluate_folder(tmp_path / "moved", str(f1_tuned_run["files"]["validation"]))
    moved_accuracy = accuracy_score(truth, moved_expected[: len(rows)])
    assert moved_report.report.metrics["accuracy"] == pytest.approx(moved_accuracy, abs=1e-12)


def test_untuned_run_saves_no_thresholds(plain_run: dict[str, Any]) -> None:
    assert _read_json(plain_run["out"] / "metrics.json")["decision_thresholds"] is None
    assert "thresholds" not in _read_json(plain_run["out"] / "config.json")["nlp_transfer"]


def test_tune_threshold_on_three_classes_is_a_user_error(tmp_path: Path, tiny_checkpoint: Path) -> None:
    rows = [{"text": f"text {i}", "label": "abc"[i % 3]} for i in range(9)]
    config, out = _bad_run_options(tiny_checkpoint, tmp_path, rows, tune_threshold=True)
    with pytest.raises(UserInputError, match="3 classes"):
        fine_tune(config)
    _assert_nothing_written(tmp_path, out)


def test_multi_label_thresholds_per_label_saved_and_used(multi_label_run: dict[str, Any], tmp_path: Path) -> None:
    out: Path = multi_label_run["out"]
    metrics = _read_json(out / "metrics.json")
    tuned = metrics["decision_thresholds"]
    assert sorted(tuned["values"]) == ML_LABELS
    assert all(0.0 < t < 1.0 for t in tuned["values"].values())
    assert tuned["metric"] == "micro_f1"
    assert tuned["validation_after"] >= tuned["validation_before"]
    assert tuned["validation_after"] == pytest.approx(metrics["eval"]["micro_f1"], abs=1e-12)
    assert _read_json(out / "config.json")["nlp_transfer"]["thresholds"] == tuned["values"]
    assert {label: row["threshold"] for label, row in metrics["eval"]["per_class"].items()} == tuned["values"]

    texts = [r["text"] for r in _read_rows(multi_label_run["files"]["validation"])] + ["joy and love", "angry"]
    classifier = load_classifier(out, device="cpu")
    probabilities = _sigmoid(classifier.logits(texts))

    def expected(thresholds: dict[str, float]) -> list[list[str]]:
        cut = np.array([thresholds[label] for label in ML_LABELS])
        return [[ML_LABELS[j] for j in np.flatnonzero(row >= cut)] for row in probabilities]

    assert [p["labels"] for p in classifier.predict(texts)] == expected(tuned["values"])
    # Per-label cuts at each label's median probability: predict must follow them, not 0.5.
    medians = {label: float(np.median(probabilities[:, j])) for j, label in enumerate(ML_LABELS)}
    moved = load_classifier(_with_thresholds(out, tmp_path / "moved", medians), device="cpu")
    assert [p["labels"] for p in moved.predict(texts)] == expected(medians)
    assert expected(medians) != expected(dict.fromkeys(ML_LABELS, 0.5))


# ---------------------------------------------------------------------------------- 6. class weights


def test_balanced_class_weights_equal_sklearn(imbalanced_run: dict[str, Any]) -> None:
    metrics = _read_json(imbalanced_run["out"] / "metrics.json")
    labels = [BINARY.index(r["label"]) for r in _read_rows(imbalanced_run["files"]["train"])]
    expected = compute_class_weight("balanced", classes=np.arange(2), y=labels)
    weights = metrics["class_weights"]
    assert set(weights) == {"kind", "mode", "weights"}
    assert (weights["kind"], weights["mode"]) == ("class_weight", "balanced")
    assert list(weights["weights"]) == BINARY
    assert [weights["weights"][label] for label in BINARY] == pytest.approx(expected.tolist(), rel=1e-12)
    assert weights["weights"] == pytest.approx({"negative": 0.625, "positive": 2.5})


def test_given_class_weights_are_recorded(selected_metrics_run: dict[str, Any], plain_run: dict[str, Any]) -> None:
    metrics = _read_json(selected_metrics_run["out"] / "metrics.json")
    assert metrics["class_weights"] == {
        "kind": "class_weight",
        "mode": "given",
        "weights": {"negative": 1.0, "positive": 3.0},
    }
    assert _read_json(plain_run["out"] / "metrics.json")["class_weights"] is None


def test_class_weights_of_the_wrong_length_are_a_user_error(tmp_path: Path, tiny_checkpoint: Path) -> None:
    config, out = _bad_run_options(tiny_checkpoint, tmp_path, class_weights="1,2,3")
    with pytest.raises(UserInputError, match="3 weights for 2 labels"):
        fine_tune(config)
    _assert_nothing_written(tmp_path, out)


def test_multi_label_balanced_weights_are_pos_weight(multi_label_run: dict[str, Any]) -> None:
    rows = _read_rows(multi_label_run["files"]["train"])
    positives = Counter(name for r in rows for name in r["labels"].split(";") if name)
    weights = _read_json(multi_label_run["out"] / "metrics.json")["class_weights"]
    assert (weights["kind"], weights["mode"]) == ("pos_weight", "balanced")
    expected = {label: (len(rows) - positives[label]) / positives[label] for label in ML_LABELS}
    assert weights["weights"] == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------- 7. nlp-transfer evaluate


def test_cli_evaluate_prints_the_table_and_writes_the_report(plain_run: dict[str, Any], tmp_path: Path) -> None:
    out: Path = plain_run["out"]
    validation = str(plain_run["files"]["validation"])
    report_path, plots = tmp_path / "r.json", tmp_path / "plots"
    argv = ["evaluate", "--model", str(out), "--file", validation, "--output", str(report_path)]
    code, stdout, stderr = _cli(argv + ["--bootstrap", "200", "--plots-dir", str(plots)])
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert f"8 examples from {validation}; primary metric accuracy" in stdout
    starred = [line for line in stdout.splitlines() if " *" in line]
    assert len(starred) == 1 and re.match(r"accuracy \* +\d\.\d{4}   \[\d\.\d{4}, \d\.\d{4}\]$", starred[0])

    record = json.loads(report_path.read_text(encoding="utf-8"))
    metrics = _read_json(out / "metrics.json")
    direct = evaluate_folder(out, validation)
    assert record["primary_metric"] == "accuracy"
    assert record["accuracy"] == direct.report.metrics["accuracy"]
    assert record["accuracy"] == pytest.approx(metrics["eval"]["accuracy"], abs=1e-12)
    assert record["confusion_matrix"] == metrics["eval"]["confusion_matrix"]
    assert record["num_examples"] == 8

    interval = record["confidence_intervals"]["accuracy"]
    assert interval["lower"] <= interval["estimate"] <= interval["upper"]
    assert interval["estimate"] == record["accuracy"]
    assert interval["resamples"] == 200
    assert record["bootstrap"]["resamples"] == 200
    assert list(record["confidence_intervals"]) == ["accuracy"]

    for name in PLOTS:
        with Image.open(plots / name) as image:
            assert image.format == "PNG"


def test_cli_evaluate_unknown_label_is_a_user_error(plain_run: dict[str, Any], tmp_path: Path) -> None:
    rows = sentiment_rows(3)
    rows[2] = {**rows[2], "label": "neutral"}
    rows[4] = {**rows[4], "label": "neutral"}
    bad = write_csv(tmp_path / "bad.csv", rows)
    code, stdout, stderr = _cli(["evaluate", "--model", str(plain_run["out"]), "--file", str(bad)])
    assert code == 2
    assert "Traceback" not in stderr and stderr.count("error: ") == 1
    message = _squash(stderr[stderr.index("error: ") :])
    assert _squash("labels the model does not know: 'neutral'") in message
    assert _squash("(rows 3, 5)") in message
    assert _squash("The model's labels are: negative, positive") in message


def test_cli_evaluate_negative_bootstrap_is_a_user_error(plain_run: dict[str, Any], tmp_path: Path) -> None:
    argv = ["evaluate", "--model", str(plain_run["out"]), "--file", str(plain_run["files"]["validation"])]
    code, _, stderr = _cli(argv + ["--bootstrap", "-1", "--output", str(tmp_path / "r.json")])
    assert code == 2
    assert "error: --bootstrap must be 0 (off) or a number of resamples, not -1" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "r.json").exists()


def test_cli_evaluate_accepts_integer_label_ids(plain_run: dict[str, Any], tmp_path: Path) -> None:
    rows = _read_rows(plain_run["files"]["validation"])
    as_ids = write_csv(tmp_path / "ids.csv", [{"text": r["text"], "label": BINARY.index(r["label"])} for r in rows])
    code, _, stderr = _cli(
        ["evaluate", "--model", str(plain_run["out"]), "--file", str(as_ids), "--output", str(tmp_path / "r.json")]
    )
    assert code == 0, stderr
    record = _read_json(tmp_path / "r.json")
    by_name = evaluate_folder(plain_run["out"], str(plain_run["files"]["validation"])).to_dict()
    assert record["confusion_matrix"] == by_name["confusion_matrix"]
    assert record["per_class"] == by_name["per_class"]
    assert record["accuracy"] == by_name["accuracy"]


def test_cli_evaluate_on_a_lora_folder(lora_run: dict[str, Any], tmp_path: Path) -> None:
    out: Path = lora_run["out"]
    assert (out / "adapter_config.json").is_file()
    report_path = tmp_path / "r.json"
    argv = ["evaluate", "--model", str(out), "--file", str(lora_run["files"]["validation"]), "--output"]
    code, stdout, stderr = _cli(argv + [str(report_path)])
    assert code == 0, stderr
    assert "primary metric accuracy" in stdout
    record = _read_json(report_path)
    metrics = _read_json(out / "metrics.json")
    assert record["accuracy"] == pytest.approx(metrics["eval"]["accuracy"], abs=1e-12)
    assert record["confusion_matrix"] == metrics["eval"]["confusion_matrix"]


# ------------------------------------------------------------------------------------------ 8. bootstrap


def test_bootstrap_interval_narrows_with_more_examples(plain_run: dict[str, Any], tmp_path: Path) -> None:
    small = write_csv(tmp_path / "small.csv", _noisy_sentiment_rows(8))
    large = write_csv(tmp_path / "large.csv", _noisy_sentiment_rows(32))
    widths = {}
    for name, path, size in (("small", small, 16), ("large", large, 64)):
        result = evaluate_folder(plain_run["out"], str(path), bootstrap=1000, seed=0)
        assert result.report.num_examples == size
        interval = result.intervals["accuracy"]
        assert 0.0 < interval["estimate"] < 1.0, "a perfect or null score would give an empty interval"
        assert interval["lower"] <= interval["estimate"] <= interval["upper"]
        assert interval["confidence"] == 0.95 and interval["resamples"] == 1000
        widths[name] = interval["upper"] - interval["lower"]
    assert 0.0 < widths["large"] < widths["small"]


# ------------------------------------------------------------------------------------ review fixes


def test_a_test_split_where_the_primary_metric_is_undefined_keeps_the_run(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    """ROC-AUC as primary and a test file of one class: the run is saved, the value recorded as undefined."""
    test_file = write_csv(tmp_path / "data" / "test.csv", [r for r in sentiment_rows(4) if r["label"] == "positive"])
    run = _train(
        tiny_checkpoint,
        tmp_path,
        sentiment_rows(8),
        sentiment_rows(4),
        metric_for_best_model="roc_auc",
        test_file=str(test_file),
    )
    metrics = _read_json(run["out"] / "metrics.json")
    assert "roc_auc" in metrics["eval"]
    assert "roc_auc" not in metrics["test"] and "one class" in metrics["test"]["undefined"]["roc_auc"]


def test_evaluate_a_folder_trained_on_the_loss_reports_the_task_default(tmp_path: Path, tiny_checkpoint: Path) -> None:
    run = _train(tiny_checkpoint, tmp_path, sentiment_rows(8), sentiment_rows(4), metric_for_best_model="loss")
    assert _read_json(run["out"] / "config.json")["nlp_transfer"]["primary_metric"] == "loss"
    result = evaluate_folder(run["out"], str(run["files"]["validation"]), bootstrap=50, metrics=["mcc"])
    assert result.primary_metric == "accuracy"
    assert set(result.report.metrics) == {"accuracy", "mcc"}
    assert set(result.intervals) == {"accuracy"}


def test_cli_evaluate_rejects_bad_batch_size_output_folder_and_plots_file(
    plain_run: dict[str, Any], tmp_path: Path
) -> None:
    argv = ["evaluate", "--model", str(plain_run["out"]), "--file", str(plain_run["files"]["validation"])]
    (tmp_path / "a-file").write_text("x")
    for extra, expected in (
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--output", str(tmp_path)], "is a folder"),
        (["--plots-dir", str(tmp_path / "a-file")], "is a file"),
    ):
        code, _, stderr = _cli(argv + extra)
        assert code == 2, extra
        assert expected in _squash(stderr) or _squash(expected) in _squash(stderr), stderr
        assert "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"], "nothing half-written"


def test_cli_interval_header_shows_the_confidence_asked_for(plain_run: dict[str, Any]) -> None:
    argv = ["evaluate", "--model", str(plain_run["out"]), "--file", str(plain_run["files"]["validation"])]
    code, stdout, _ = _cli(argv + ["--bootstrap", "50", "--confidence", "0.5"])
    assert code == 0
    assert "50% interval" in stdout and "95%" not in stdout


def test_integer_labels_are_not_read_as_ids_when_the_names_are_integers(tmp_path: Path) -> None:
    from nlp_transfer.data.labels import LabelSchema
    from nlp_transfer.data.reading import read_labelled

    schema = LabelSchema("single_label", ["1", "2", "3", "4", "5"])
    good = write_csv(tmp_path / "good.csv", [{"text": "a", "label": 1}, {"text": "b", "label": 5}])
    assert read_labelled(str(good), schema).labels.tolist() == [0, 4]
    bad = write_csv(tmp_path / "bad.csv", [{"text": "a", "label": 0}, {"text": "b", "label": 2}])
    with pytest.raises(UserInputError, match="labels the model does not know: 0"):
        read_labelled(str(bad), schema)


def test_top_k_puts_the_decided_label_first() -> None:
    from nlp_transfer.inference.records import prediction_record as _prediction_record

    # A tuned threshold of 0.3 made "positive" the label although "negative" is more probable.
    prediction = {"label": "positive", "score": 0.4, "scores": {"negative": 0.6, "positive": 0.4}}
    record = _prediction_record("text", None, prediction, top_k=2, all_scores=False)
    assert [entry["label"] for entry in record["top_k"]] == ["positive", "negative"]
