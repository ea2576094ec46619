"""`nlp-transfer evaluate`: a saved folder scored on a labelled file with the metric suite, bootstrap intervals,
its risk-coverage and (with --coverage) the coverage of its prediction sets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.data.labels import LabelSchema
from nlp_transfer.data.reading import read_labelled
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.conformal import (
    abstention_report,
    coverage_report,
    resolve_level,
)
from nlp_transfer.evaluation.metrics import (
    EvaluationReport,
    bootstrap_intervals,
    reported_primary,
    reported_suite,
)
from nlp_transfer.inference.predict import load_classifier
from nlp_transfer.settings import PackageSettings
from nlp_transfer.tasks import REGRESSION

logger = logging.getLogger(__name__)


@dataclass
class FolderEvaluation:
    """`nlp-transfer evaluate`'s result: the report, the primary metric, and bootstrap intervals."""

    model: str
    file: str
    task: str
    labels: list[str]
    primary_metric: str
    report: EvaluationReport
    thresholds: dict[str, float]
    intervals: dict[str, dict[str, float]]
    bootstrap: dict[str, Any] | None
    abstention: dict[str, Any] | None = None
    """Risk-coverage of the file (classification): accuracy at 100/90/80/50% answered, --min-confidence each."""
    conformal: dict[str, Any] | None = None
    """With --coverage: the level used, the empirical coverage and the mean set size (interval width)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "file": self.file,
            "task": self.task,
            "labels": self.labels,
            "primary_metric": self.primary_metric,
            "decision_thresholds": self.thresholds or None,
            **self.report.to_dict(),
            "confidence_intervals": self.intervals,
            "bootstrap": self.bootstrap,
            **({"abstention": self.abstention} if self.abstention is not None else {}),
            **({"conformal": self.conformal} if self.conformal is not None else {}),
        }


def evaluate_folder(
    model_dir: str | Path,
    file: str,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    metrics: Sequence[str] | None = None,
    bootstrap: int = 0,
    bootstrap_all: bool = False,
    confidence: float = 0.95,
    seed: int = 0,
    batch_size: int = 32,
    trust_remote_code: bool = False,
    encoding: str = "utf-8",
    coverage: float | None = None,
) -> FolderEvaluation:
    """Score a trained folder (plain or adapter) on a labelled file with the suite; optional bootstrap CIs.

    Classification also gets its risk-coverage report; with `coverage`, the empirical coverage of the folder's
    conformal sets (intervals) at that level and their mean size (width)."""
    _check_arguments(batch_size, bootstrap, confidence)
    classifier = load_classifier(model_dir)
    settings = PackageSettings.read(classifier.model)
    level = resolve_level(coverage, settings.conformal, str(model_dir)) if coverage is not None else None
    task = classifier.task
    schema = LabelSchema(task, [] if task == REGRESSION else classifier.labels)
    data = read_labelled(file, schema, text_column, text_pair_column, label_column, settings.label_separator, encoding)
    primary = reported_primary(task, schema.num_labels, settings.primary_metric)
    suite = reported_suite(
        task, classifier.labels, metrics, primary, classifier.thresholds, trust_remote_code=trust_remote_code
    )
    logits = classifier.logits(data.texts, data.pairs, batch_size=batch_size)
    report = suite.evaluate(logits, data.labels)
    intervals: dict[str, dict[str, float]] = {}
    settings_record = None
    if bootstrap:
        targets = [spec.name for spec in suite.specs] if bootstrap_all else [primary]
        found = bootstrap_intervals(suite, logits, data.labels, targets, bootstrap, confidence, seed)
        intervals = {name: interval.to_dict() for name, interval in found.items()}
        settings_record = {"resamples": bootstrap, "confidence": confidence, "seed": seed, "method": "percentile"}
    result = FolderEvaluation(
        str(model_dir),
        str(file),
        task,
        classifier.labels,
        primary,
        report,
        classifier.thresholds,
        intervals,
        settings_record,
    )
    if task != REGRESSION:
        result.abstention = abstention_report(suite, logits, data.labels)
    if level is not None:
        key, quantile = level
        outputs = suite.scores(logits)
        result.conformal = {"coverage_target": coverage, **coverage_report(outputs, data.labels, task, quantile, key)}
    return result


def _check_arguments(batch_size: int, bootstrap: int, confidence: float) -> None:
    """`evaluate_folder`'s numeric arguments, refused before any work with the option to change."""
    if batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, not {batch_size}.")
    if bootstrap < 0:
        raise UserInputError(f"--bootstrap must be 0 (off) or a number of resamples, not {bootstrap}.")
    if not 0 < confidence < 1:
        raise UserInputError(f"--confidence must be between 0 and 1 (e.g. 0.95), not {confidence}.")
