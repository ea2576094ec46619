"""Metrics: evaluate modules shipped in the package, the suite a task reports, and the primary metric."""

from nlp_transfer.evaluation.metrics.bootstrap import Interval, bootstrap_intervals
from nlp_transfer.evaluation.metrics.suite import (
    MULTI_LABEL_THRESHOLD,
    EvaluationReport,
    MetricSuite,
    PrimaryMetric,
    TrainerMetrics,
    available_metrics,
    choose_primary_metric,
    load_external_metrics,
    logits_of,
    logits_to_predictions,
    metric_direction,
    probabilities_from_logits,
    reported_primary,
    reported_suite,
    resolve_primary_metric,
)
from nlp_transfer.evaluation.metrics.thresholds import tune_thresholds

__all__ = [
    "MULTI_LABEL_THRESHOLD",
    "EvaluationReport",
    "Interval",
    "MetricSuite",
    "PrimaryMetric",
    "TrainerMetrics",
    "available_metrics",
    "bootstrap_intervals",
    "choose_primary_metric",
    "load_external_metrics",
    "logits_of",
    "logits_to_predictions",
    "metric_direction",
    "probabilities_from_logits",
    "reported_primary",
    "reported_suite",
    "resolve_primary_metric",
    "tune_thresholds",
]
