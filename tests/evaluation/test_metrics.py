"""Metrics: every value equals its scikit-learn/scipy reference; undefined values come with a reason.

The suite takes logits; the references here compute probabilities themselves (scipy's softmax/expit) and
score them with scikit-learn or scipy, so a wrong transform, option or input in the package shows up.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, softmax
from sklearn import metrics as sk
from transformers import EvalPrediction

from nlp_transfer import UserInputError
from nlp_transfer.evaluation.metrics import modules as m
from nlp_transfer.evaluation.metrics.suite import (
    MULTI_LABEL_METRICS,
    REGRESSION_METRICS,
    SINGLE_LABEL_METRICS,
    MetricSuite,
    TrainerMetrics,
    available_metrics,
    choose_primary_metric,
    decide,
    load_external_metrics,
    probabilities_from_logits,
    threshold_vector,
)

LABELS = {2: ["neg", "pos"], 3: ["a", "b", "c"]}
ML_LABELS = ["w", "x", "y", "z"]


# ---------------------------------------------------------------------------------------- fixtures


def single_label_case(num_classes: int, n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits that lean toward the reference class, so the metrics are neither 0 nor 1."""
    rng = np.random.default_rng(seed + num_classes)
    references = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes))
    logits[np.arange(n), references] += 1.0
    return logits, references


def multi_label_case(n: int = 60, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    references = (rng.random((n, len(ML_LABELS))) < np.array([0.5, 0.3, 0.2, 0.6])).astype(int)
    logits = rng.normal(size=references.shape) + 1.2 * (2 * references - 1)
    return logits, references


def regression_case(n: int = 50, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    references = rng.normal(size=n)
    predictions = 0.8 * references + rng.normal(scale=0.5, size=n) + 0.1
    return predictions.reshape(-1, 1), references


def reference_ece(probabilities: np.ndarray, references: np.ndarray, bins: int = 15) -> float:
    """A plain loop: equal-width bins over (0, 1] on the top-class confidence."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == references
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for b in range(bins):
        lower, upper = edges[b], edges[b + 1]
        members = [(lower < c <= upper) or (b == 0 and c == 0.0) for c in confidence]
        members = np.array(members)
        if members.sum() == 0:
            continue
        total += abs(correct[members].mean() - confidence[members].mean()) * members.sum() / len(references)
    return total


def sklearn_single_label(probabilities: np.ndarray, references: np.ndarray) -> dict[str, float]:
    num_classes = probabilities.shape[1]
    predictions = probabilities.argmax(axis=1)
    expected = {
        "accuracy": sk.accuracy_score(references, predictions),
        "balanced_accuracy": sk.balanced_accuracy_score(references, predictions),
        "mcc": sk.matthews_corrcoef(references, predictions),
        "cohen_kappa": sk.cohen_kappa_score(references, predictions),
        "log_loss": sk.log_loss(references, probabilities, labels=list(range(num_classes))),
        "ece": reference_ece(probabilities, references),
    }
    for average in ("macro", "micro", "weighted"):
        for key, function in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score)):
            expected[f"{average}_{key}"] = function(references, predictions, average=average, zero_division=0)
    onehot = np.eye(num_classes)[references]
    if num_classes == 2:
        for key, function in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score)):
            expected[key] = function(references, predictions, pos_label=1, average="binary", zero_division=0)
        expected["roc_auc"] = sk.roc_auc_score(references, probabilities[:, 1])
        expected["average_precision"] = sk.average_precision_score(references, probabilities[:, 1])
        expected["brier"] = sk.brier_score_loss(references, probabilities[:, 1])
    else:
        expected["roc_auc"] = sk.roc_auc_score(references, probabilities, multi_class="ovr")
        expected["average_precision"] = np.mean(
            [sk.average_precision_score(onehot[:, k], probabilities[:, k]) for k in range(num_classes)]
        )
        expected["brier"] = np.mean(((probabilities - onehot) ** 2).sum(axis=1))
    return {key: float(value) for key, value in expected.items()}


def assert_all_finite(metrics: dict[str, float]) -> None:
    for name, value in metrics.items():
        assert value is not None and math.isfinite(value), f"{name} = {value!r}"


# ------------------------------------------------------------------------------------ single-label


@pytest.mark.parametrize("num_classes", [2, 3])
def test_single_label_metrics_equal_sklearn(num_classes: int) -> None:
    logits, references = single_label_case(num_classes)
    probabilities = softmax(logits, axis=1)
    expected = sklearn_single_label(probabilities, references)
    report = MetricSuite("single_label", LABELS[num_classes]).evaluate(logits, references)
    assert set(report.metrics) == set(expected)
    for name, value in expected.items():
        assert report.metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert report.undefined == {}
    assert report.num_examples == len(references)
    # Sanity: the case is not degenerate (a constant would hide a wrong input).
    assert 0.3 < report.metrics["accuracy"] < 0.95
    assert 0.0 < report.metrics["ece"] < 0.5


def test_binary_only_metrics_absent_for_three_classes() -> None:
    logits, references = single_label_case(3)
    metrics = MetricSuite("single_label", LABELS[3]).compute(logits, references)
    assert not {"precision", "recall", "f1"} & set(metrics)
    assert {"precision", "recall", "f1"} <= set(available_metrics("single_label", 2))
    assert not {"precision", "recall", "f1"} & set(available_metrics("single_label", 3))


def test_binary_precision_is_of_the_positive_class() -> None:
    # Positive class (id 1) has precision 1/3 and recall 1/2; class 0 has different values.
    references = np.array([1, 1, 0, 0, 0, 0])
    predictions = np.array([1, 0, 1, 1, 0, 0])
    logits = np.eye(2)[predictions] * 2.0
    metrics = MetricSuite("single_label", LABELS[2]).compute(logits, references)
    assert metrics["precision"] == pytest.approx(1 / 3)
    assert metrics["recall"] == pytest.approx(1 / 2)
    assert metrics["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))


@pytest.mark.parametrize("num_classes", [2, 3])
def test_per_class_confusion_and_calibration_equal_sklearn(num_classes: int) -> None:
    logits, references = single_label_case(num_classes, seed=5)
    probabilities = softmax(logits, axis=1)
    predictions = probabilities.argmax(axis=1)
    report = MetricSuite("single_label", LABELS[num_classes]).evaluate(logits, references)

    ids = list(range(num_classes))
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        references, predictions, labels=ids, zero_division=0
    )
    assert list(report.per_class) == LABELS[num_classes]
    for k, label in enumerate(LABELS[num_classes]):
        row = report.per_class[label]
        assert row["precision"] == pytest.approx(precision[k])
        assert row["recall"] == pytest.approx(recall[k])
        assert row["f1"] == pytest.approx(f1[k])
        assert row["support"] == support[k]
    assert report.confusion_matrix == sk.confusion_matrix(references, predictions, labels=ids).tolist()

    bins = report.calibration
    assert sum(row["count"] for row in bins) == len(references)
    confidence = probabilities.max(axis=1)
    correct = predictions == references
    for row in bins:
        members = (confidence > row["lower"]) & (confidence <= row["upper"])
        assert members.sum() == row["count"]
        assert row["confidence"] == pytest.approx(confidence[members].mean())
        assert row["accuracy"] == pytest.approx(correct[members].mean())
    ece = sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in bins) / len(references)
    assert report.metrics["ece"] == pytest.approx(ece)


def test_ece_bins_are_closed_on_the_right() -> None:
    """Confidences exactly on a bin edge belong to the bin below it: (lower, upper]."""
    edges = np.linspace(0.0, 1.0, 16)
    probabilities = np.array(
        [[edges[9], 1 - edges[9]], [1 - edges[12], edges[12]], [1.0, 0.0], [0.5, 0.5], [0.3, 0.7], [0.9, 0.1]]
    )
    references = np.array([0, 0, 0, 1, 1, 1])
    value = m.ExpectedCalibrationError(keep_in_memory=True).compute(
        prediction_scores=probabilities, references=references
    )
    assert value["ece"] == pytest.approx(reference_ece(probabilities, references))
    bins = m.calibration_bins(probabilities.max(axis=1), probabilities.argmax(axis=1) == references, 15)
    assert [row["upper"] for row in bins] == pytest.approx(edges[[8, 9, 11, 12, 14, 15]].tolist())
    assert [row["count"] for row in bins] == [1] * 6


def test_probabilities_from_logits_match_scipy() -> None:
    logits = np.array([[1.0, -2.0, 0.5], [300.0, 0.0, -300.0]])
    np.testing.assert_allclose(probabilities_from_logits(logits, "single_label"), softmax(logits, axis=1))
    np.testing.assert_allclose(probabilities_from_logits(logits[:, :2], "multi_label"), expit(logits[:, :2]))
    np.testing.assert_array_equal(probabilities_from_logits(np.array([[1.5], [-2.0]]), "regression"), [1.5, -2.0])


# ------------------------------------------------------------------------------------- multi-label


def test_multi_label_metrics_equal_sklearn() -> None:
    logits, references = multi_label_case()
    probabilities = expit(logits)
    decisions = (probabilities >= 0.5).astype(int)
    report = MetricSuite("multi_label", ML_LABELS).evaluate(logits, references)

    expected = {
        "micro_f1": sk.f1_score(references, decisions, average="micro", zero_division=0),
        "macro_f1": sk.f1_score(references, decisions, average="macro", zero_division=0),
        "samples_f1": sk.f1_score(references, decisions, average="samples", zero_division=0),
        "subset_accuracy": sk.accuracy_score(references, decisions),
        "hamming_loss": sk.hamming_loss(references, decisions),
        "roc_auc": sk.roc_auc_score(references, probabilities, average="macro"),
    }
    assert set(report.metrics) == set(expected)
    for name, value in expected.items():
        assert report.metrics[name] == pytest.approx(value), name
    assert 0.0 < report.metrics["subset_accuracy"] < 1.0

    precision, recall, f1, support = sk.precision_recall_fscore_support(references, decisions, zero_division=0)
    matrices = sk.multilabel_confusion_matrix(references, decisions)
    for j, label in enumerate(ML_LABELS):
        row = report.per_class[label]
        assert row["roc_auc"] == pytest.approx(sk.roc_auc_score(references[:, j], probabilities[:, j]))
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision[j], recall[j], f1[j]))
        assert row["support"] == support[j]
        (tn, fp), (fn, tp) = matrices[j]
        assert report.confusion_matrix[label] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert sum(row["count"] for row in report.calibration) == references.size


def test_multi_label_accepts_float_references() -> None:
    """Trainer hands multi-label label_ids as floats (BCE needs them); the values must not change."""
    logits, references = multi_label_case()
    suite = MetricSuite("multi_label", ML_LABELS)
    assert suite.compute(logits, references.astype(np.float32)) == suite.compute(logits, references)


# -------------------------------------------------------------------------------------- regression


@pytest.mark.parametrize("shape", ["column", "flat"])
def test_regression_metrics_equal_sklearn_and_scipy(shape: str) -> None:
    logits, references = regression_case()
    predictions = logits.reshape(-1)
    given = logits if shape == "column" else predictions
    report = MetricSuite("regression", ["score"]).evaluate(given, references)
    expected = {
        "mse": sk.mean_squared_error(references, predictions),
        "rmse": math.sqrt(sk.mean_squared_error(references, predictions)),
        "mae": sk.mean_absolute_error(references, predictions),
        "r2": sk.r2_score(references, predictions),
        "pearson": stats.pearsonr(predictions, references).statistic,
        "spearman": stats.spearmanr(predictions, references).statistic,
    }
    assert set(report.metrics) == set(expected)
    for name, value in expected.items():
        assert report.metrics[name] == pytest.approx(value), name
    assert 0.3 < report.metrics["pearson"] < 0.99
    assert report.per_class is None and report.confusion_matrix is None and report.calibration is None


# ---------------------------------------------------------------------------- modules used directly


def test_accuracy_module_directly() -> None:
    references = [0, 1, 2, 2, 1, 0, 0]
    predictions = [0, 1, 1, 2, 1, 0, 2]
    result = m.Accuracy(keep_in_memory=True).compute(predictions=predictions, references=references)
    assert result == {"accuracy": pytest.approx(sk.accuracy_score(references, predictions))}
    assert result["accuracy"] == pytest.approx(5 / 7)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_f1_module_with_average(average: str) -> None:
    references = [0, 1, 2, 2, 1, 0, 0, 2]
    predictions = [0, 1, 1, 2, 1, 0, 2, 2]
    result = m.F1(keep_in_memory=True).compute(predictions=predictions, references=references, average=average)
    assert result["f1"] == pytest.approx(sk.f1_score(references, predictions, average=average))


def test_f1_module_rejects_unknown_average() -> None:
    with pytest.raises(ValueError, match="average"):
        m.F1(keep_in_memory=True).compute(predictions=[0, 1], references=[0, 1], average="sideways")


def test_scores_based_modules_directly() -> None:
    logits, references = single_label_case(3, n=40)
    probabilities = softmax(logits, axis=1)
    roc = m.RocAuc(keep_in_memory=True).compute(prediction_scores=probabilities, references=references)
    assert roc["roc_auc"] == pytest.approx(sk.roc_auc_score(references, probabilities, multi_class="ovr"))
    loss = m.LogLoss(keep_in_memory=True).compute(prediction_scores=probabilities, references=references)
    assert loss["log_loss"] == pytest.approx(sk.log_loss(references, probabilities))


def test_multi_label_and_regression_modules_directly() -> None:
    logits, references = multi_label_case()
    decisions = (expit(logits) >= 0.5).astype(int)
    result = m.MultiLabelF1(keep_in_memory=True).compute(predictions=decisions, references=references, average="macro")
    assert result["f1"] == pytest.approx(sk.f1_score(references, decisions, average="macro"))
    roc = m.MultiLabelRocAuc(keep_in_memory=True).compute(prediction_scores=expit(logits), references=references)
    assert roc["roc_auc"] == pytest.approx(sk.roc_auc_score(references, expit(logits)))

    values, targets = [1.0, 2.0, 2.5, 4.0], [1.2, 1.9, 3.0, 3.5]
    pearson = m.PearsonCorrelation(keep_in_memory=True).compute(predictions=values, references=targets)
    assert pearson["pearson"] == pytest.approx(stats.pearsonr(values, targets).statistic)


def test_module_reports_undefined_with_reason() -> None:
    result = m.PearsonCorrelation(keep_in_memory=True).compute(predictions=[1.0, 1.0, 1.0], references=[0.0, 1.0, 2.0])
    assert result["pearson"] is None
    assert "constant" in result["reason"]
    result = m.RocAuc(keep_in_memory=True).compute(prediction_scores=[[0.3, 0.7], [0.6, 0.4]], references=[1, 1])
    assert result["roc_auc"] is None
    assert re.search(r"\b1\b", result["reason"])


# -------------------------------------------------------------------------------------- edge cases


def test_class_never_predicted_scores_zero_for_it() -> None:
    logits, references = single_label_case(3, n=60)
    logits[:, 2] = -20.0  # class "c" is never the argmax
    probabilities = softmax(logits, axis=1)
    predictions = probabilities.argmax(axis=1)
    assert 2 not in predictions and 2 in references
    report = MetricSuite("single_label", LABELS[3]).evaluate(logits, references)
    assert report.per_class["c"]["precision"] == 0.0
    assert report.per_class["c"]["recall"] == 0.0
    assert report.per_class["c"]["f1"] == 0.0
    assert report.metrics["macro_precision"] == pytest.approx(
        sk.precision_score(references, predictions, average="macro", zero_division=0)
    )
    assert report.metrics["macro_f1"] == pytest.approx(
        sk.f1_score(references, predictions, average="macro", zero_division=0)
    )
    assert [row[2] for row in report.confusion_matrix] == [0, 0, 0]
    assert_all_finite(report.metrics)


def test_one_reference_class_binary() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(20, 2))
    references = np.zeros(20, dtype=int)
    predictions = softmax(logits, axis=1).argmax(axis=1)
    assert len(set(predictions)) == 2
    report = MetricSuite("single_label", LABELS[2]).evaluate(logits, references)
    assert re.search(r"\b0\b", report.undefined["roc_auc"]), report.undefined["roc_auc"]
    assert re.search(r"\b1\b", report.undefined["average_precision"]), report.undefined["average_precision"]
    assert "roc_auc" not in report.metrics and "average_precision" not in report.metrics
    assert report.metrics["accuracy"] == pytest.approx(sk.accuracy_score(references, predictions))
    assert report.metrics["mcc"] == 0.0 == sk.matthews_corrcoef(references, predictions)
    assert_all_finite(report.metrics)


def test_three_classes_with_a_class_missing_from_references() -> None:
    logits, references = single_label_case(3, n=60)
    references = np.where(references == 1, 2, references)  # no class 1
    report = MetricSuite("single_label", LABELS[3]).evaluate(logits, references)
    assert "roc_auc" in report.undefined
    assert "[1]" in report.undefined["roc_auc"]
    assert "[1]" in report.undefined["average_precision"]
    probabilities = softmax(logits, axis=1)
    assert report.metrics["log_loss"] == pytest.approx(sk.log_loss(references, probabilities, labels=[0, 1, 2]))
    assert report.per_class["b"]["support"] == 0
    assert_all_finite(report.metrics)


def test_constant_regression_predictions() -> None:
    _, references = regression_case()
    logits = np.full((len(references), 1), 0.3)
    report = MetricSuite("regression", ["score"]).evaluate(logits, references)
    for name in ("pearson", "spearman"):
        assert name not in report.metrics
        assert "constant" in report.undefined[name]
    predictions = logits.reshape(-1)
    assert report.metrics["mse"] == pytest.approx(sk.mean_squared_error(references, predictions))
    assert report.metrics["r2"] == pytest.approx(sk.r2_score(references, predictions))
    assert report.metrics["r2"] < 0
    assert_all_finite(report.metrics)


def test_multi_label_with_a_label_never_positive() -> None:
    logits, references = multi_label_case()
    references[:, 1] = 0
    probabilities = expit(logits)
    report = MetricSuite("multi_label", ML_LABELS).evaluate(logits, references)
    assert report.per_class["x"]["roc_auc"] is None
    others = [0, 2, 3]
    expected = np.mean([sk.roc_auc_score(references[:, j], probabilities[:, j]) for j in others])
    assert report.metrics["roc_auc"] == pytest.approx(expected)
    decisions = (probabilities >= 0.5).astype(int)
    assert report.metrics["macro_f1"] == pytest.approx(
        sk.f1_score(references, decisions, average="macro", zero_division=0)
    )
    assert_all_finite(report.metrics)


@pytest.mark.parametrize(
    ("task", "labels", "logits", "references"),
    [
        ("single_label", LABELS[2], [[0.0, 1.0], [1.0, 0.0]], [0, 1]),
        ("single_label", LABELS[2], [[2.0, 0.0], [0.0, 2.0]], [1, 1]),
        ("single_label", LABELS[3], [[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]], [0, 2]),
        ("single_label", LABELS[3], [[3.0, 1.0, 2.0], [3.0, 0.0, 0.0]], [0, 0]),
        ("multi_label", ML_LABELS, [[0.0, 1.0, 2.0, -1.0], [1.0, -1.0, -1.0, 3.0]], [[0, 1, 1, 0], [1, 0, 0, 0]]),
        ("multi_label", ML_LABELS, [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]], [[1, 1, 1, 1], [1, 1, 1, 1]]),
        ("regression", ["score"], [[0.5], [1.0]], [0.1, 0.9]),
        ("regression", ["score"], [[0.5], [1.0]], [0.7, 0.7]),
    ],
)
def test_two_examples_never_crash_or_nan(task, labels, logits, references) -> None:
    report = MetricSuite(task, labels).evaluate(np.array(logits), np.array(references))
    assert report.num_examples == 2
    assert report.metrics, "some metric must be defined"
    assert_all_finite(report.metrics)
    assert set(report.metrics) | set(report.undefined) == set(available_metrics(task, len(labels)))
    assert all(isinstance(reason, str) and reason for reason in report.undefined.values())


def test_never_nan_on_extreme_logits() -> None:
    logits = np.array([[500.0, -500.0], [-500.0, 500.0], [500.0, -500.0], [-500.0, 500.0]])
    references = np.array([0, 1, 1, 0])
    report = MetricSuite("single_label", LABELS[2]).evaluate(logits, references)
    assert_all_finite(report.metrics)
    assert report.metrics["accuracy"] == 0.5
    assert report.metrics["log_loss"] > 5


# ---------------------------------------------------------------------------- compute_metrics hook


def test_trainer_metrics_returns_the_suite_values() -> None:
    logits, references = single_label_case(3)
    suite = MetricSuite("single_label", LABELS[3])
    compute_metrics = TrainerMetrics(suite)
    values = compute_metrics(EvalPrediction(predictions=logits, label_ids=references))
    assert values == suite.compute(logits, references)
    assert values["accuracy"] == pytest.approx(sk.accuracy_score(references, logits.argmax(axis=1)))
    # Models that return extra outputs hand Trainer a tuple; the logits come first.
    hidden = np.zeros((len(references), 4))
    assert compute_metrics(EvalPrediction(predictions=(logits, hidden), label_ids=references)) == values


def test_trainer_metrics_leaves_undefined_values_out_and_keeps_their_reasons() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(10, 2))
    references = np.ones(10, dtype=int)
    compute_metrics = TrainerMetrics(MetricSuite("single_label", LABELS[2]))
    values = compute_metrics(EvalPrediction(predictions=logits, label_ids=references))
    assert "roc_auc" not in values and "accuracy" in values
    assert "one class" in compute_metrics.undefined["roc_auc"]


# ------------------------------------------------------------------------------- choosing metrics


def test_unknown_metric_name_lists_the_available_ones() -> None:
    with pytest.raises(UserInputError) as caught:
        MetricSuite("single_label", LABELS[2], names=["accuracy", "nope"])
    message = str(caught.value)
    assert "nope" in message
    for name in available_metrics("single_label", 2):
        assert name in message


def test_binary_only_name_refused_for_three_classes() -> None:
    with pytest.raises(UserInputError, match="precision"):
        MetricSuite("single_label", LABELS[3], names=["precision"])


def test_names_select_the_reported_metrics() -> None:
    logits, references = single_label_case(2)
    suite = MetricSuite("single_label", LABELS[2], names=["mcc"])
    assert suite.names == ["mcc"]
    report = suite.evaluate(logits, references)
    assert set(report.metrics) == {"mcc"}
    predictions = softmax(logits, axis=1).argmax(axis=1)
    assert report.metrics["mcc"] == pytest.approx(sk.matthews_corrcoef(references, predictions))


def test_available_metrics_follow_the_tables() -> None:
    assert available_metrics("multi_label", 4) == [spec.name for spec in MULTI_LABEL_METRICS]
    assert available_metrics("regression", 1) == [spec.name for spec in REGRESSION_METRICS]
    assert available_metrics("single_label", 2) == [spec.name for spec in SINGLE_LABEL_METRICS]
    lower_is_better = {spec.name for spec in SINGLE_LABEL_METRICS if not spec.greater_is_better}
    assert lower_is_better == {"log_loss", "brier", "ece"}


def test_load_external_metric_offline_names_it() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(UserInputError) as caught:
        load_external_metrics(["some_hub_metric_xyz"], "single_label", 2, trust_remote_code=True)
    message = str(caught.value)
    assert "some_hub_metric_xyz" in message
    assert "evaluate.load" in message and "could not load" in message


def test_load_external_metrics_skips_shipped_and_refuses_other_tasks() -> None:
    assert load_external_metrics(["accuracy"], "single_label", 2) == {}
    assert load_external_metrics([], "regression", 1) == {}
    with pytest.raises(UserInputError, match="does not apply"):
        load_external_metrics(["hamming_loss"], "single_label", 2)
    with pytest.raises(UserInputError, match="does not apply"):
        load_external_metrics(["f1"], "single_label", 3)


@pytest.mark.parametrize(
    ("counts", "name", "ratio_text"),
    [
        ([10, 12, 9], "accuracy", "1.3"),
        ([40, 5, 30], "macro_f1", "8.0"),
        ([90, 10], "mcc", "9.0"),
        ([30, 10], "accuracy", "3.0"),
        ([10, 30], "accuracy", "3.0"),
        ([31, 10], "mcc", "3.1"),
    ],
)
def test_choose_primary_metric_single_label(counts: list[int], name: str, ratio_text: str) -> None:
    primary = choose_primary_metric("single_label", counts)
    assert primary.name == name
    assert primary.greater_is_better is True
    assert ratio_text in primary.reason


def test_choose_primary_metric_other_tasks() -> None:
    multi = choose_primary_metric("multi_label", [5, 50, 7])
    assert (multi.name, multi.greater_is_better) == ("micro_f1", True)
    assert multi.reason
    regression = choose_primary_metric("regression")
    assert (regression.name, regression.greater_is_better) == ("rmse", False)
    assert regression.reason
    empty_class = choose_primary_metric("single_label", [10, 0, 8])
    assert empty_class.name == "macro_f1" and empty_class.reason


# -------------------------------------------------------------------------------------- decisions


def test_binary_threshold_decides_on_the_positive_probability() -> None:
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(200, 2))
    probabilities = softmax(logits, axis=1)
    vector = threshold_vector(LABELS[2], {"pos": 0.3}, "single_label")
    np.testing.assert_array_equal(vector, [0.3])
    decisions = decide(probabilities, "single_label", vector)
    np.testing.assert_array_equal(decisions, (probabilities[:, 1] >= 0.3).astype(int))
    assert not np.array_equal(decisions, probabilities.argmax(axis=1))

    references = rng.integers(0, 2, 200)
    expected = sk.accuracy_score(references, probabilities[:, 1] >= 0.3)
    with_suite_thresholds = MetricSuite("single_label", LABELS[2], thresholds={"pos": 0.3})
    assert with_suite_thresholds.compute(logits, references)["accuracy"] == pytest.approx(expected)
    plain = MetricSuite("single_label", LABELS[2])
    assert plain.compute(logits, references, thresholds={"pos": 0.3})["accuracy"] == pytest.approx(expected)
    assert plain.compute(logits, references)["accuracy"] == pytest.approx(
        sk.accuracy_score(references, probabilities.argmax(axis=1))
    )


def test_multi_label_per_label_thresholds() -> None:
    logits, references = multi_label_case()
    probabilities = expit(logits)
    thresholds = {"w": 0.2, "y": 0.8}
    vector = threshold_vector(ML_LABELS, thresholds, "multi_label")
    np.testing.assert_array_equal(vector, [0.2, 0.5, 0.8, 0.5])
    expected = (probabilities >= np.array([0.2, 0.5, 0.8, 0.5])).astype(int)
    np.testing.assert_array_equal(decide(probabilities, "multi_label", vector), expected)
    report = MetricSuite("multi_label", ML_LABELS, thresholds=thresholds).evaluate(logits, references)
    assert report.metrics["micro_f1"] == pytest.approx(sk.f1_score(references, expected, average="micro"))
    assert report.per_class["w"]["threshold"] == 0.2
    assert report.per_class["x"]["threshold"] == 0.5


def test_per_class_threshold_is_the_one_used_for_the_decisions() -> None:
    logits, references = multi_label_case()
    suite = MetricSuite("multi_label", ML_LABELS, thresholds={"w": 0.7})
    report = suite.evaluate(logits, references, thresholds={"w": 0.2})
    decisions = (expit(logits) >= np.array([0.2, 0.5, 0.5, 0.5])).astype(int)
    assert report.metrics["micro_f1"] == pytest.approx(sk.f1_score(references, decisions, average="micro"))
    assert report.per_class["w"]["threshold"] == 0.2


def test_no_thresholds_means_argmax_or_one_half() -> None:
    probabilities = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    assert threshold_vector(LABELS[3], None, "single_label") is None
    assert threshold_vector(LABELS[3], {"c": 0.1}, "single_label") is None  # argmax decides 3 classes
    assert threshold_vector(LABELS[2], None, "single_label") is None
    np.testing.assert_array_equal(decide(probabilities, "single_label"), [1, 0])
    np.testing.assert_array_equal(threshold_vector(ML_LABELS[:3], None, "multi_label"), [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(decide(probabilities, "multi_label"), [[0, 1, 0], [1, 0, 0]])
    binary = np.array([[0.6, 0.4], [0.45, 0.55]])
    np.testing.assert_array_equal(
        decide(binary, "single_label", threshold_vector(LABELS[2], {}, "single_label")), [0, 1]
    )


def test_an_undefined_primary_metric_stops_training_at_the_evaluation() -> None:
    from transformers import TrainerControl

    from nlp_transfer.training.trainer import PrimaryMetricCheck

    metrics = TrainerMetrics(MetricSuite("single_label", LABELS[2]))
    metrics(EvalPrediction(predictions=np.zeros((4, 2)), label_ids=np.ones(4, dtype=int)))
    control = TrainerControl()
    check = PrimaryMetricCheck(metrics, "roc_auc")
    with pytest.raises(
        UserInputError, match=r"The primary metric roc_auc is undefined on the validation set: .*one class"
    ):
        check.on_evaluate(None, None, control, metrics={"eval_accuracy": 1.0, "eval_loss": 0.5})
    assert check.on_evaluate(None, None, control, metrics={"eval_roc_auc": 0.5}) is control
    assert PrimaryMetricCheck(metrics, "loss").on_evaluate(None, None, control, metrics={"eval_loss": 0.5}) is control
