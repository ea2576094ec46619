"""Metrics: evaluate modules shipped in the package, and the choice of the primary metric for a task."""

from nlp_transfer.metrics.modules import F1, Accuracy, MeanSquaredError, MultiLabelF1
from nlp_transfer.metrics.suite import (
    MetricSuite,
    build_compute_metrics,
    logits_to_predictions,
    metric_suite,
    primary_metric,
)

__all__ = [
    "F1",
    "Accuracy",
    "MeanSquaredError",
    "MetricSuite",
    "MultiLabelF1",
    "build_compute_metrics",
    "logits_to_predictions",
    "metric_suite",
    "primary_metric",
]
