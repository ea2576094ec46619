"""Measuring a trained model: the final evaluation, plots, `nlp-transfer evaluate`.

Training ends here: the best checkpoint is scored on validation (and test) with the whole metric suite,
decision thresholds are tuned when asked, and the reports become metrics.json and the PNG plots. The
same reports come from `evaluate_folder` for a saved folder and any labelled file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers.trainer_utils import PredictionOutput

from nlp_transfer.data import EVAL_FILE_PREFIX, LabelSchema, read_labelled
from nlp_transfer.errors import UserInputError
from nlp_transfer.long_text import per_document
from nlp_transfer.metrics import (
    EvaluationReport,
    MetricSuite,
    PrimaryMetric,
    bootstrap_intervals,
    logits_of,
    reported_primary,
    reported_suite,
    tune_thresholds,
)
from nlp_transfer.metrics.plots import plot_confusion_matrix, plot_reliability
from nlp_transfer.outputs import CALIBRATION_PNG, CONFUSION_MATRIX_PNG
from nlp_transfer.predict import load_classifier
from nlp_transfer.record import RECORD_SPLITS, TRAINER_FIGURES
from nlp_transfer.settings import PackageSettings
from nlp_transfer.tasks import REGRESSION

logger = logging.getLogger(__name__)

MAX_PLOTTED_LABELS = 100
"""Above this many labels the confusion-matrix plot is skipped: its ticks no longer read, and drawing it takes
minutes and gigabytes (200 labels: about a minute; 700: killed for memory on a 23 GB machine). The matrix itself
stays in metrics.json."""


@dataclass
class FinalEvaluation:
    """The best model's reports per split key ('eval', 'test'), their metrics.json dicts, and tuned thresholds."""

    reports: dict[str, EvaluationReport] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    thresholds: dict[str, Any] | None = None
    """With --tune-threshold: the values (label -> probability), the metric and its value before and after."""

    @property
    def threshold_values(self) -> dict[str, float]:
        return dict(self.thresholds["values"]) if self.thresholds else {}


def evaluate_splits(
    trainer: Any,
    encoded: Any,
    suite: MetricSuite,
    primary: PrimaryMetric,
    tune: bool,
    chunk_aggregate: str = "mean",
) -> FinalEvaluation:
    """Score validation (and test) with the suite; with `tune`, first pick thresholds on validation.

    The training Trainer gathers the predictions (across processes too, with the run's loss weights in its
    loss); the suite then scores the gathered logits with the thresholds, which are returned, not stored.
    Chunked splits are scored per document: their chunks' logits aggregated `chunk_aggregate` says.
    """
    keys = {**{key: split for key, split in RECORD_SPLITS.items() if split in encoded}, **extra_splits(encoded)}
    outputs = {}
    for key, split in keys.items():
        output = trainer.predict(encoded[split], metric_key_prefix=key)
        logits, labels = per_document(logits_of(output.predictions), output.label_ids, chunk_aggregate, suite.task)
        outputs[key] = PredictionOutput(logits, labels, output.metrics)
    final = FinalEvaluation()
    if tune:
        final.thresholds = _tune_on_validation(suite, primary, outputs["eval"])
    for key, output in outputs.items():
        report = suite.evaluate(output.predictions, output.label_ids, thresholds=final.threshold_values)
        trainer_figures = {
            name.removeprefix(f"{key}_"): value
            for name, value in output.metrics.items()
            if name.removeprefix(f"{key}_") in TRAINER_FIGURES
        }
        final.reports[key] = report
        final.records[key] = {**report.to_dict(), **trainer_figures}
    return final


def extra_splits(encoded: Any) -> dict[str, str]:
    """{key: split} of the --eval-file splits (key = split = eval_NAME), in the order they were given."""
    return {split: split for split in encoded if split.startswith(EVAL_FILE_PREFIX)}


def _tune_on_validation(suite: MetricSuite, primary: PrimaryMetric, validation: Any) -> dict[str, Any]:
    """Thresholds that maximise the primary metric on validation, and its value before and after."""
    scores = suite.scores(logits_of(validation.predictions))
    references = suite.prepare_references(validation.label_ids)
    before = suite.score(primary.name, scores, suite.decisions(scores, {}), references)
    values = tune_thresholds(suite, primary.name, scores, references)
    after = suite.score(primary.name, scores, suite.decisions(scores, values), references)
    logger.info("Decision thresholds %s: validation %s %.4f -> %.4f", values, primary.name, before, after)
    return {
        "values": values,
        "metric": primary.name,
        "tuned_on": "validation",
        "validation_before": before,
        "validation_after": after,
        "note": "chosen on validation, so validation figures are optimistic; test figures are not",
    }


def write_plots(folder: Path, final: FinalEvaluation, suite: MetricSuite) -> dict[str, str] | None:
    """confusion_matrix.png and calibration.png of the test split (validation without one); classification only."""
    if suite.task == REGRESSION or not final.reports:
        return None
    key = "test" if "test" in final.reports else "eval"
    return plot_report(final.reports[key], suite.labels, folder, RECORD_SPLITS[key])


def plot_report(report: EvaluationReport, labels: Sequence[str], folder: Path, split: str) -> dict[str, str]:
    """Draw the confusion matrix (up to MAX_PLOTTED_LABELS labels) and the reliability diagram; {kind: file}."""
    plots = {"split": split}
    if len(labels) > MAX_PLOTTED_LABELS:
        logger.warning(
            "Confusion-matrix plot skipped: %d labels are more than the %d a readable plot holds; the matrix itself "
            "stays in the metrics (confusion_matrix).",
            len(labels),
            MAX_PLOTTED_LABELS,
        )
    else:
        title = f"Confusion matrix ({split})"
        plot_confusion_matrix(report.confusion_matrix, labels, folder / CONFUSION_MATRIX_PNG, title)
        plots["confusion_matrix"] = CONFUSION_MATRIX_PNG
    plot_reliability(
        report.calibration or [], folder / CALIBRATION_PNG, f"Reliability ({split})", report.metrics.get("ece")
    )
    return {**plots, "calibration": CALIBRATION_PNG}


# ------------------------------------------------------------------------------ nlp-transfer evaluate


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
) -> FolderEvaluation:
    """Score a trained folder (plain or adapter) on a labelled file with the suite; optional bootstrap CIs."""
    if batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, not {batch_size}.")
    if bootstrap < 0:
        raise UserInputError(f"--bootstrap must be 0 (off) or a number of resamples, not {bootstrap}.")
    if not 0 < confidence < 1:
        raise UserInputError(f"--confidence must be between 0 and 1 (e.g. 0.95), not {confidence}.")
    classifier = load_classifier(model_dir)
    settings = PackageSettings.read(classifier.model)
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
    return FolderEvaluation(
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
