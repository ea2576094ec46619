"""Which metrics a task reports, which one is primary, and how Trainer's logits become their inputs.

Primary metric (picks the best checkpoint, drives early stopping): accuracy for single-label,
micro-F1 for multi-label, MSE for regression (lower is better).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from transformers import EvalPrediction

from nlp_transfer.metrics.modules import F1, Accuracy, MeanSquaredError, MultiLabelF1
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL

MULTI_LABEL_THRESHOLD = 0.5

_PRIMARY = {SINGLE_LABEL: ("accuracy", True), MULTI_LABEL: ("micro_f1", True), REGRESSION: ("mse", False)}


@dataclass(frozen=True)
class MetricSuite:
    """Computes a task's metrics from predictions (class ids, 0/1 vectors or values) and references."""

    task: str
    num_labels: int

    def compute(self, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
        if self.task == REGRESSION:
            return MeanSquaredError(keep_in_memory=True).compute(
                predictions=np.asarray(predictions, dtype=float).reshape(-1),
                references=np.asarray(references, dtype=float).reshape(-1),
            )
        if self.task == MULTI_LABEL:
            predictions = np.asarray(predictions, dtype=int)
            references = np.asarray(references, dtype=int)
            f1 = MultiLabelF1(keep_in_memory=True)
            return {
                "micro_f1": f1.compute(predictions=predictions, references=references, average="micro")["f1"],
                "macro_f1": f1.compute(predictions=predictions, references=references, average="macro")["f1"],
                "subset_accuracy": float(np.mean(np.all(predictions == references, axis=1))),
            }
        f1 = F1(keep_in_memory=True)
        # Macro-F1 over the classes present in references or predictions (scikit-learn's default): a class
        # absent from a small validation set would otherwise count as F1 0 against perfect predictions.
        results = {
            "accuracy": Accuracy(keep_in_memory=True).compute(predictions=predictions, references=references)[
                "accuracy"
            ],
            "macro_f1": f1.compute(predictions=predictions, references=references, average="macro")["f1"],
        }
        if self.num_labels == 2:
            # Binary tasks (e.g. paraphrase) conventionally report F1 of the positive class, id 1.
            results["f1"] = f1.compute(predictions=predictions, references=references, average="binary")["f1"]
        return results


def metric_suite(task: str, num_labels: int) -> MetricSuite:
    return MetricSuite(task, num_labels)


def primary_metric(task: str) -> tuple[str, bool]:
    """(metric name, greater_is_better) for a task."""
    return _PRIMARY[task]


def logits_to_predictions(logits: np.ndarray, task: str) -> np.ndarray:
    """Class ids (argmax), 0/1 vectors (sigmoid > 0.5) or values, from the model's raw outputs."""
    logits = np.asarray(logits)
    if task == REGRESSION:
        return logits.reshape(-1)
    if task == MULTI_LABEL:
        return (1 / (1 + np.exp(-logits)) > MULTI_LABEL_THRESHOLD).astype(int)
    return logits.argmax(axis=-1)


def build_compute_metrics(task: str, num_labels: int) -> Callable[[EvalPrediction], dict[str, float]]:
    """The `compute_metrics` callable Trainer calls after each evaluation."""
    suite = metric_suite(task, num_labels)

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return suite.compute(logits_to_predictions(logits, task), prediction.label_ids)

    return compute_metrics
