"""Metrics: equal to scikit-learn on fixed arrays, primary metrics, logits -> predictions, offline modules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error
from transformers import EvalPrediction

from nlp_transfer.metrics import (
    F1,
    Accuracy,
    MeanSquaredError,
    MultiLabelF1,
    build_compute_metrics,
    logits_to_predictions,
    metric_suite,
    primary_metric,
)

# ------------------------------------------------------------------------------------ single-label


def test_single_label_matches_sklearn() -> None:
    predictions = np.array([0, 1, 2, 2, 1, 0, 0])
    references = np.array([0, 1, 1, 2, 1, 0, 2])
    result = metric_suite("single_label", 3).compute(predictions, references)
    assert set(result) == {"accuracy", "macro_f1"}  # no binary F1 for 3 classes
    assert result["accuracy"] == pytest.approx(accuracy_score(references, predictions))
    assert result["accuracy"] == pytest.approx(5 / 7)
    assert result["macro_f1"] == pytest.approx(f1_score(references, predictions, average="macro"))
    assert result["macro_f1"] == pytest.approx(0.7)


def test_binary_task_also_reports_positive_class_f1() -> None:
    predictions = np.array([1, 1, 0, 0, 1])
    references = np.array([1, 0, 0, 1, 1])
    result = metric_suite("single_label", 2).compute(predictions, references)
    assert set(result) == {"accuracy", "macro_f1", "f1"}
    assert result["accuracy"] == pytest.approx(accuracy_score(references, predictions))
    assert result["macro_f1"] == pytest.approx(f1_score(references, predictions, average="macro"))
    assert result["f1"] == pytest.approx(f1_score(references, predictions, average="binary"))
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["macro_f1"] == pytest.approx(7 / 12)


def test_class_never_predicted_gives_sklearn_macro_f1_with_zero_division_0() -> None:
    predictions = np.array([0, 0, 1, 1])
    references = np.array([0, 2, 1, 2])  # class 2 is never predicted
    result = metric_suite("single_label", 3).compute(predictions, references)
    expected = f1_score(references, predictions, average="macro", zero_division=0)
    assert result["macro_f1"] == pytest.approx(expected)
    assert result["macro_f1"] == pytest.approx(4 / 9)
    assert not math.isnan(result["macro_f1"])
    assert result["accuracy"] == pytest.approx(0.5)


def test_binary_f1_with_no_positive_predictions_is_zero_not_nan() -> None:
    result = metric_suite("single_label", 2).compute(np.array([0, 0, 0]), np.array([0, 1, 1]))
    assert result["f1"] == 0.0
    assert result["macro_f1"] == pytest.approx(f1_score([0, 1, 1], [0, 0, 0], average="macro", zero_division=0))
    assert not any(math.isnan(value) for value in result.values())


def test_perfect_predictions_on_a_split_without_one_class_have_macro_f1_1() -> None:
    predictions = references = np.array([0, 1, 0, 1])
    result = metric_suite("single_label", 3).compute(predictions, references)
    assert result["accuracy"] == 1.0
    assert result["macro_f1"] == pytest.approx(f1_score(references, predictions, average="macro", zero_division=0))
    assert result["macro_f1"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- multi-label


MULTI_PREDICTIONS = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
MULTI_REFERENCES = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]])


def test_multi_label_matches_sklearn() -> None:
    result = metric_suite("multi_label", 3).compute(MULTI_PREDICTIONS, MULTI_REFERENCES)
    assert set(result) == {"micro_f1", "macro_f1", "subset_accuracy"}
    assert result["micro_f1"] == pytest.approx(f1_score(MULTI_REFERENCES, MULTI_PREDICTIONS, average="micro"))
    assert result["micro_f1"] == pytest.approx(0.8)
    assert result["macro_f1"] == pytest.approx(
        f1_score(MULTI_REFERENCES, MULTI_PREDICTIONS, average="macro", zero_division=0)
    )
    assert result["macro_f1"] == pytest.approx(2 / 3)
    assert result["subset_accuracy"] == pytest.approx(accuracy_score(MULTI_REFERENCES, MULTI_PREDICTIONS))
    assert result["subset_accuracy"] == pytest.approx(0.5)


def test_multi_label_accepts_float_references_as_the_data_stores_them() -> None:
    references = MULTI_REFERENCES.astype(np.float32)
    result = metric_suite("multi_label", 3).compute(MULTI_PREDICTIONS, references)
    assert result["micro_f1"] == pytest.approx(0.8)
    assert result["subset_accuracy"] == pytest.approx(0.5)


def test_multi_label_with_nothing_predicted_is_zero_not_nan() -> None:
    predictions = np.zeros((3, 2), dtype=int)
    references = np.array([[1, 0], [0, 1], [0, 0]])
    result = metric_suite("multi_label", 2).compute(predictions, references)
    assert result == {"micro_f1": 0.0, "macro_f1": 0.0, "subset_accuracy": pytest.approx(1 / 3)}


# -------------------------------------------------------------------------------------- regression


def test_regression_matches_sklearn_and_flattens() -> None:
    predictions = np.array([[1.0], [2.5], [3.0], [-0.5]])  # (n, 1) as the model outputs
    references = np.array([1.5, 2.0, 3.0, 0.5])
    result = metric_suite("regression", 1).compute(predictions, references)
    expected = mean_squared_error(references, predictions.reshape(-1))
    assert set(result) == {"mse", "rmse"}
    assert result["mse"] == pytest.approx(expected)
    assert result["mse"] == pytest.approx((0.25 + 0.25 + 0 + 1.0) / 4)
    assert result["rmse"] == pytest.approx(math.sqrt(expected))


# --------------------------------------------------------------------------------- primary metrics


@pytest.mark.parametrize(
    ("task", "expected"),
    [("single_label", ("accuracy", True)), ("multi_label", ("micro_f1", True)), ("regression", ("mse", False))],
)
def test_primary_metric(task: str, expected: tuple[str, bool]) -> None:
    assert primary_metric(task) == expected


@pytest.mark.parametrize(
    ("task", "num_labels", "predictions", "references"),
    [
        ("single_label", 3, np.array([0, 1, 2]), np.array([0, 2, 2])),
        ("multi_label", 3, MULTI_PREDICTIONS, MULTI_REFERENCES),
        ("regression", 1, np.array([0.1, 0.2]), np.array([0.0, 0.4])),
    ],
)
def test_primary_metric_is_among_the_computed_metrics(task, num_labels, predictions, references) -> None:
    name, _ = primary_metric(task)
    assert name in metric_suite(task, num_labels).compute(predictions, references)


# ------------------------------------------------------------------------------ logits to predictions


def test_logits_to_predictions_single_label_is_argmax() -> None:
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5], [-2.0, -1.0, -0.5]])
    assert logits_to_predictions(logits, "single_label").tolist() == [1, 0, 2]


def test_logits_to_predictions_multi_label_is_sigmoid_above_one_half() -> None:
    logits = np.array([[0.0, 0.1, -0.1, 5.0], [-3.0, 2.0, 0.0, -0.01]])
    predictions = logits_to_predictions(logits, "multi_label")
    assert predictions.tolist() == [[0, 1, 0, 1], [0, 1, 0, 0]]  # sigmoid(0) = 0.5 is not above 0.5
    assert predictions.dtype.kind == "i"


def test_logits_to_predictions_regression_flattens() -> None:
    logits = np.array([[0.5], [1.25], [-2.0]])
    predictions = logits_to_predictions(logits, "regression")
    assert predictions.shape == (3,)
    assert predictions.tolist() == [0.5, 1.25, -2.0]


# ---------------------------------------------------------------------------- build_compute_metrics


def test_build_compute_metrics_single_label() -> None:
    compute = build_compute_metrics("single_label", 3)
    logits = np.array([[0.1, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    labels = np.array([1, 0, 0, 1])
    result = compute(EvalPrediction(predictions=logits, label_ids=labels))
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["macro_f1"] == pytest.approx(f1_score(labels, [1, 0, 2, 1], average="macro", labels=[0, 1, 2]))


def test_build_compute_metrics_takes_the_logits_from_a_tuple() -> None:
    compute = build_compute_metrics("single_label", 2)
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    hidden = np.zeros((3, 4))
    labels = np.array([1, 1, 1])
    result = compute(EvalPrediction(predictions=(logits, hidden), label_ids=labels))
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(f1_score(labels, [1, 0, 1]))


def test_build_compute_metrics_multi_label_and_regression() -> None:
    multi = build_compute_metrics("multi_label", 3)
    logits = np.where(MULTI_PREDICTIONS == 1, 2.0, -2.0)
    result = multi(EvalPrediction(predictions=logits, label_ids=MULTI_REFERENCES.astype(np.float32)))
    assert result["micro_f1"] == pytest.approx(0.8)
    assert result["subset_accuracy"] == pytest.approx(0.5)

    regression = build_compute_metrics("regression", 1)
    result = regression(EvalPrediction(predictions=np.array([[1.0], [3.0]]), label_ids=np.array([2.0, 3.0])))
    assert result["mse"] == pytest.approx(0.5)
    assert result["rmse"] == pytest.approx(math.sqrt(0.5))


# ----------------------------------------------------------------------------- evaluate modules


def test_evaluate_modules_work_offline_in_memory() -> None:
    assert Accuracy(keep_in_memory=True).compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2]) == {
        "accuracy": 0.75
    }
    f1 = F1(keep_in_memory=True)
    assert f1.compute(predictions=[0, 1, 1], references=[0, 1, 0], average="binary")["f1"] == pytest.approx(2 / 3)
    assert f1.compute(predictions=[0, 1, 1], references=[0, 1, 0], average="micro")["f1"] == pytest.approx(2 / 3)
    multi = MultiLabelF1(keep_in_memory=True)
    assert multi.compute(predictions=[[1, 0], [1, 1]], references=[[1, 0], [0, 1]])["f1"] == pytest.approx(0.8)
    mse = MeanSquaredError(keep_in_memory=True).compute(predictions=[1.0, 2.0], references=[1.0, 4.0])
    assert mse == {"mse": pytest.approx(2.0), "rmse": pytest.approx(math.sqrt(2.0))}


def test_evaluate_module_accumulates_batches() -> None:
    accuracy = Accuracy(keep_in_memory=True)
    accuracy.add_batch(predictions=[0, 1], references=[0, 0])
    accuracy.add_batch(predictions=[1, 1], references=[1, 1])
    assert accuracy.compute() == {"accuracy": 0.75}
