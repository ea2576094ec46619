"""The metrics this package reports, as `evaluate` modules that work offline.

`evaluate.load("accuracy")` fetches its script from the Hub, which fails offline; an `evaluate.Metric`
subclass defined here and instantiated directly does not. Each module computes with scikit-learn or
scipy, the reference implementation its value is tested against.

A value that is not defined for the given input (ROC-AUC with one class in the references, Pearson with
constant predictions) comes back as `None` with a `reason`, never as a silent NaN or a crash.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import datasets
import evaluate
import numpy as np
from scipy import stats
from sklearn import metrics as sk

CLASS_IDS = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})
CLASS_SCORES = datasets.Features(
    {"prediction_scores": datasets.Sequence(datasets.Value("float64")), "references": datasets.Value("int64")}
)
MULTI_HOT = datasets.Features(
    {
        "predictions": datasets.Sequence(datasets.Value("int64")),
        "references": datasets.Sequence(datasets.Value("int64")),
    }
)
MULTI_LABEL_SCORES = datasets.Features(
    {
        "prediction_scores": datasets.Sequence(datasets.Value("float64")),
        "references": datasets.Sequence(datasets.Value("int64")),
    }
)
VALUES = datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("float64")})

AVERAGES = ("macro", "micro", "weighted", "binary")
DEFAULT_CALIBRATION_BINS = 15


class Undefined(Exception):
    """Raised inside a score function when the metric has no value for this input; carries the reason."""


def undefined_if_nan(value: float, reason: str) -> float:
    if value is None or not np.isfinite(value):
        raise Undefined(reason)
    return float(value)


class PackageMetric(evaluate.Metric):
    """An offline `evaluate` module: a description, its input features, and one score function.

    `compute(...)` returns `{KEY: value}`, or `{KEY: None, "reason": why}` when the value is undefined.
    """

    KEY: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    INPUTS: ClassVar[str]
    FEATURES: ClassVar[datasets.Features]

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.DESCRIPTION, citation="", inputs_description=self.INPUTS, features=self.FEATURES
        )

    def _compute(self, references, **kwargs: Any) -> dict[str, Any]:
        inputs = {name: np.asarray(value) for name, value in kwargs.items() if name in self.FEATURES}
        options = {name: value for name, value in kwargs.items() if name not in self.FEATURES}
        try:
            with warnings.catch_warnings():
                # scikit-learn/scipy warn and return NaN where a value is undefined; Undefined says why instead.
                warnings.simplefilter("ignore")
                return {self.KEY: self.score(np.asarray(references), **inputs, **options)}
        except Undefined as error:
            return {self.KEY: None, "reason": str(error)}

    def score(self, references: np.ndarray, **kwargs: Any) -> Any:
        raise NotImplementedError


def _check_average(average: str) -> str:
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {', '.join(AVERAGES)}, not {average!r}")
    return average


# ---------------------------------------------------------------------------------------- class ids


class Accuracy(PackageMetric):
    KEY = "accuracy"
    DESCRIPTION = "Accuracy: correct predictions / all predictions."
    INPUTS = "predictions, references: class ids (int)."
    FEATURES = CLASS_IDS

    def score(self, references, predictions):
        return float(sk.accuracy_score(references, predictions))


class BalancedAccuracy(PackageMetric):
    KEY = "balanced_accuracy"
    DESCRIPTION = "Balanced accuracy: the mean of per-class recall, so each class counts equally."
    INPUTS = "predictions, references: class ids (int)."
    FEATURES = CLASS_IDS

    def score(self, references, predictions):
        return float(sk.balanced_accuracy_score(references, predictions))


class _AveragedScore(PackageMetric):
    INPUTS = "predictions, references: class ids (int); average: macro|micro|weighted|binary (positive id 1)."
    FEATURES = CLASS_IDS
    FUNCTION: ClassVar[Callable[..., float]]

    def score(self, references, predictions, average: str = "macro"):
        # Classes present in references or predictions (scikit-learn's default); zero_division=0 makes a
        # class never predicted score 0 instead of a warning and NaN.
        function = type(self).FUNCTION
        return float(function(references, predictions, average=_check_average(average), zero_division=0))


class Precision(_AveragedScore):
    KEY = "precision"
    DESCRIPTION = "Precision: of the examples predicted as a class, the share that belong to it, averaged."
    FUNCTION = staticmethod(sk.precision_score)


class Recall(_AveragedScore):
    KEY = "recall"
    DESCRIPTION = "Recall: of the examples of a class, the share predicted as it, averaged."
    FUNCTION = staticmethod(sk.recall_score)


class F1(_AveragedScore):
    KEY = "f1"
    DESCRIPTION = "F1 score: harmonic mean of precision and recall, averaged as asked."
    FUNCTION = staticmethod(sk.f1_score)


class MatthewsCorrelation(PackageMetric):
    KEY = "mcc"
    DESCRIPTION = "Matthews correlation coefficient: -1..1, 0 for chance, robust to class imbalance."
    INPUTS = "predictions, references: class ids (int)."
    FEATURES = CLASS_IDS

    def score(self, references, predictions):
        # scikit-learn defines it as 0 when predictions or references are constant.
        return float(sk.matthews_corrcoef(references, predictions))


class CohenKappa(PackageMetric):
    KEY = "cohen_kappa"
    DESCRIPTION = "Cohen's kappa: agreement between predictions and references beyond chance."
    INPUTS = "predictions, references: class ids (int)."
    FEATURES = CLASS_IDS

    def score(self, references, predictions):
        value = sk.cohen_kappa_score(references, predictions)
        if not np.isfinite(value):  # both sides the same single class: agreement is perfect
            return 1.0 if np.array_equal(references, predictions) else 0.0
        return float(value)


# ------------------------------------------------------------------------------ class probabilities


def _num_classes(prediction_scores: np.ndarray) -> int:
    if prediction_scores.ndim != 2 or prediction_scores.shape[1] < 2:
        raise ValueError("prediction_scores must be class probabilities of shape (examples, classes >= 2)")
    return prediction_scores.shape[1]


class RocAuc(PackageMetric):
    KEY = "roc_auc"
    DESCRIPTION = "Area under the ROC curve: binary on the positive class (id 1), else one-vs-rest macro."
    INPUTS = "prediction_scores: class probabilities (examples x classes); references: class ids."
    FEATURES = CLASS_SCORES

    def score(self, references, prediction_scores):
        classes = _num_classes(prediction_scores)
        present = np.unique(references)
        if len(present) < 2:
            raise Undefined(f"only one class ({present.tolist()}) in the references")
        if classes == 2:
            return float(sk.roc_auc_score(references, prediction_scores[:, 1]))
        if len(present) < classes:
            missing = sorted(set(range(classes)) - set(present.tolist()))
            raise Undefined(f"class ids {missing} have no example in the references (one-vs-rest needs each)")
        return float(sk.roc_auc_score(references, prediction_scores, multi_class="ovr", labels=list(range(classes))))


class AveragePrecision(PackageMetric):
    KEY = "average_precision"
    DESCRIPTION = "Average precision (area under precision-recall): binary on id 1, else one-vs-rest macro."
    INPUTS = "prediction_scores: class probabilities (examples x classes); references: class ids."
    FEATURES = CLASS_SCORES

    def score(self, references, prediction_scores):
        classes = _num_classes(prediction_scores)
        if classes == 2:
            if not np.any(references == 1):
                raise Undefined("no positive example (id 1) in the references")
            return float(sk.average_precision_score(references, prediction_scores[:, 1]))
        present = np.unique(references)
        if len(present) < classes:
            missing = sorted(set(range(classes)) - set(present.tolist()))
            raise Undefined(f"class ids {missing} have no example in the references (one-vs-rest needs each)")
        return float(sk.average_precision_score(references, prediction_scores, average="macro"))


class LogLoss(PackageMetric):
    KEY = "log_loss"
    DESCRIPTION = "Log loss (cross-entropy) of the predicted class probabilities; lower is better."
    INPUTS = "prediction_scores: class probabilities (examples x classes); references: class ids."
    FEATURES = CLASS_SCORES

    def score(self, references, prediction_scores):
        classes = _num_classes(prediction_scores)
        return float(sk.log_loss(references, prediction_scores, labels=list(range(classes))))


class BrierScore(PackageMetric):
    KEY = "brier"
    DESCRIPTION = (
        "Brier score: mean squared error of the probabilities; binary on the positive class (0..1), "
        "multiclass summed over classes (0..2). Lower is better."
    )
    INPUTS = "prediction_scores: class probabilities (examples x classes); references: class ids."
    FEATURES = CLASS_SCORES

    def score(self, references, prediction_scores):
        classes = _num_classes(prediction_scores)
        if classes == 2:
            return float(sk.brier_score_loss(references, prediction_scores[:, 1], pos_label=1))
        return float(sk.brier_score_loss(references, prediction_scores, labels=list(range(classes))))


def calibration_bins(confidences: np.ndarray, correct: np.ndarray, bins: int) -> list[dict[str, float]]:
    """Equal-width confidence bins over (0, 1]: count, mean confidence and accuracy of each non-empty bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds confidences in (edges[i], edges[i+1]]; a confidence of exactly 0 goes to the first bin.
    index = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        if members.any():
            table.append(
                {
                    "lower": float(edges[b]),
                    "upper": float(edges[b + 1]),
                    "count": int(members.sum()),
                    "confidence": float(confidences[members].mean()),
                    "accuracy": float(correct[members].mean()),
                }
            )
    return table


def top_label_bins(
    prediction_scores: np.ndarray, references: np.ndarray, bins: int = DEFAULT_CALIBRATION_BINS
) -> list[dict[str, float]]:
    """Calibration bins of the top class: its probability (confidence) against whether it was right."""
    correct = (prediction_scores.argmax(axis=1) == references).astype(float)
    return calibration_bins(prediction_scores.max(axis=1), correct, bins)


class ExpectedCalibrationError(PackageMetric):
    KEY = "ece"
    DESCRIPTION = (
        "Expected calibration error: the count-weighted mean gap between confidence (the top class's "
        "probability) and accuracy over equal-width confidence bins. Lower is better."
    )
    INPUTS = "prediction_scores: class probabilities (examples x classes); references: class ids; bins: int."
    FEATURES = CLASS_SCORES

    def score(self, references, prediction_scores, bins: int = DEFAULT_CALIBRATION_BINS):
        _num_classes(prediction_scores)
        if len(references) == 0:
            raise Undefined("no examples")
        table = top_label_bins(prediction_scores, references, bins)
        return float(sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in table) / len(references))


# ------------------------------------------------------------------------------------ multi-label


class SubsetAccuracy(PackageMetric):
    KEY = "subset_accuracy"
    DESCRIPTION = "Subset accuracy: share of examples whose whole label set is predicted exactly."
    INPUTS = "predictions, references: 0/1 vectors of length num_labels."
    FEATURES = MULTI_HOT

    def score(self, references, predictions):
        return float(sk.accuracy_score(references, predictions))


class HammingLoss(PackageMetric):
    KEY = "hamming_loss"
    DESCRIPTION = "Hamming loss: share of (example, label) decisions that are wrong. Lower is better."
    INPUTS = "predictions, references: 0/1 vectors of length num_labels."
    FEATURES = MULTI_HOT

    def score(self, references, predictions):
        return float(sk.hamming_loss(references, predictions))


class MultiLabelF1(PackageMetric):
    KEY = "f1"
    DESCRIPTION = "Multi-label F1 over 0/1 indicator vectors; average is micro, macro or samples."
    INPUTS = "predictions, references: 0/1 vectors of length num_labels; average: micro|macro|samples."
    FEATURES = MULTI_HOT

    def score(self, references, predictions, average: str = "micro"):
        if average not in ("micro", "macro", "samples"):
            raise ValueError(f"average must be micro, macro or samples, not {average!r}")
        return float(sk.f1_score(references, predictions, average=average, zero_division=0))


def per_label_roc_auc(references: np.ndarray, prediction_scores: np.ndarray) -> list[float | None]:
    """ROC-AUC of each label; None for a label whose references are all 0 or all 1."""
    values: list[float | None] = []
    for label in range(references.shape[1]):
        column = references[:, label]
        values.append(
            float(sk.roc_auc_score(column, prediction_scores[:, label])) if 0 < column.sum() < len(column) else None
        )
    return values


class MultiLabelRocAuc(PackageMetric):
    KEY = "roc_auc"
    DESCRIPTION = (
        "Multi-label ROC-AUC: per label, and their macro mean over the labels that have both positive and "
        "negative references (a label without both has no ROC curve)."
    )
    INPUTS = "prediction_scores: per-label probabilities; references: 0/1 vectors of length num_labels."
    FEATURES = MULTI_LABEL_SCORES

    def score(self, references, prediction_scores):
        values = per_label_roc_auc(references, prediction_scores)
        defined = [value for value in values if value is not None]
        if not defined:
            raise Undefined("no label has both positive and negative references")
        return float(np.mean(defined))


# ------------------------------------------------------------------------------------- regression


class MeanSquaredError(PackageMetric):
    KEY = "mse"
    DESCRIPTION = "Mean squared error of real-valued predictions. Lower is better."
    INPUTS = "predictions, references: floats."
    FEATURES = VALUES

    def score(self, references, predictions):
        return float(sk.mean_squared_error(references, predictions))


class RootMeanSquaredError(PackageMetric):
    KEY = "rmse"
    DESCRIPTION = "Root mean squared error, in the units of the labels. Lower is better."
    INPUTS = "predictions, references: floats."
    FEATURES = VALUES

    def score(self, references, predictions):
        return float(sk.root_mean_squared_error(references, predictions))


class MeanAbsoluteError(PackageMetric):
    KEY = "mae"
    DESCRIPTION = "Mean absolute error, in the units of the labels. Lower is better."
    INPUTS = "predictions, references: floats."
    FEATURES = VALUES

    def score(self, references, predictions):
        return float(sk.mean_absolute_error(references, predictions))


class RSquared(PackageMetric):
    KEY = "r2"
    DESCRIPTION = "Coefficient of determination R^2: 1 is perfect, 0 is as good as predicting the mean."
    INPUTS = "predictions, references: floats."
    FEATURES = VALUES

    def score(self, references, predictions):
        if len(references) < 2:
            raise Undefined("needs at least two examples")
        # scikit-learn's finite convention for constant references: 1.0 if predicted exactly, else 0.0.
        return float(sk.r2_score(references, predictions))


def _correlation(references: np.ndarray, predictions: np.ndarray, function: Callable[..., Any]) -> float:
    if len(references) < 2:
        raise Undefined("needs at least two examples")
    if np.all(predictions == predictions[0]):
        raise Undefined("the predictions are constant, so their correlation with the references is undefined")
    if np.all(references == references[0]):
        raise Undefined("the references are constant, so their correlation with the predictions is undefined")
    return undefined_if_nan(function(predictions, references).statistic, "correlation is undefined")


class PearsonCorrelation(PackageMetric):
    KEY = "pearson"
    DESCRIPTION = "Pearson correlation between predictions and references (linear agreement)."
    INPUTS = "predictions, references: floats."
    FEATURES = VALUES

    def score(self, references, predictions):
        return _correlation(references, predictions, stats.pearsonr)


class SpearmanCorrelation(PackageMetric):
    KEY = "spearman"
    DESCRIPTION = "Spearman rank correlation between predictions and references (monotonic agreement)."
    INPUTS = "predictions, references: floats."
    FEATURES = VALUES

    def score(self, references, predictions):
        return _correlation(references, predictions, stats.spearmanr)
