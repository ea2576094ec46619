"""The metrics this package needs, as `evaluate` modules that work offline.

`evaluate.load("accuracy")` fetches its script from the Hub, which fails offline; an `evaluate.Metric`
subclass defined here and instantiated directly does not. Each module computes with scikit-learn, the
reference implementation its value is tested against.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error

_CLASS_FEATURES = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})
_MULTI_LABEL_FEATURES = datasets.Features(
    {
        "predictions": datasets.Sequence(datasets.Value("int64")),
        "references": datasets.Sequence(datasets.Value("int64")),
    }
)
_REGRESSION_FEATURES = datasets.Features(
    {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
)


def _metric_info(description: str, inputs: str, features: datasets.Features) -> evaluate.MetricInfo:
    return evaluate.MetricInfo(description=description, citation="", inputs_description=inputs, features=features)


class Accuracy(evaluate.Metric):
    """Share of examples whose predicted class id equals the reference id."""

    def _info(self) -> evaluate.MetricInfo:
        return _metric_info(
            "Accuracy: correct predictions / all predictions.",
            "predictions, references: class ids (int).",
            _CLASS_FEATURES,
        )

    def _compute(self, predictions, references) -> dict[str, float]:
        return {"accuracy": float(accuracy_score(references, predictions))}


class F1(evaluate.Metric):
    """F1 over class ids; `average` is 'macro', 'micro', 'weighted' or 'binary' (positive class id 1)."""

    def _info(self) -> evaluate.MetricInfo:
        return _metric_info(
            "F1 score: harmonic mean of precision and recall, averaged as asked.",
            "predictions, references: class ids (int); average: macro|micro|weighted|binary.",
            _CLASS_FEATURES,
        )

    def _compute(self, predictions, references, average: str = "macro", labels=None) -> dict[str, float]:
        # zero_division=0: a class never predicted scores 0 instead of a warning and NaN.
        score = f1_score(references, predictions, average=average, labels=labels, zero_division=0)
        return {"f1": float(score)}


class MultiLabelF1(evaluate.Metric):
    """F1 over multi-hot label vectors; `average` is 'micro', 'macro' or 'samples'."""

    def _info(self) -> evaluate.MetricInfo:
        return _metric_info(
            "Multi-label F1 over 0/1 indicator vectors.",
            "predictions, references: 0/1 vectors of length num_labels.",
            _MULTI_LABEL_FEATURES,
        )

    def _compute(self, predictions, references, average: str = "micro") -> dict[str, float]:
        score = f1_score(np.asarray(references), np.asarray(predictions), average=average, zero_division=0)
        return {"f1": float(score)}


class MeanSquaredError(evaluate.Metric):
    """Mean squared error and its root, for regression."""

    def _info(self) -> evaluate.MetricInfo:
        return _metric_info(
            "Mean squared error (and root mean squared error) of real-valued predictions.",
            "predictions, references: floats.",
            _REGRESSION_FEATURES,
        )

    def _compute(self, predictions, references) -> dict[str, float]:
        mse = float(mean_squared_error(references, predictions))
        return {"mse": mse, "rmse": float(np.sqrt(mse))}
