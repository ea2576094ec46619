"""The final evaluation of a run: the best checkpoint scored on validation (and test, and --eval-file splits)
with the whole metric suite, calibrated, thresholds tuned when asked; the reports become metrics.json and plots.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformers.trainer_utils import PredictionOutput

from nlp_transfer.data.reading import EVAL_FILE_PREFIX
from nlp_transfer.evaluation.calibration import (
    MIN_ROWS,
    Temperature,
    calibration_figures,
    fit_temperature,
    reliability_bins,
)
from nlp_transfer.evaluation.conformal import (
    REPORTED_COVERAGES,
    abstention_report,
    conformal_settings,
    coverage_report,
    level_key,
)
from nlp_transfer.evaluation.documents import per_document, window_labels
from nlp_transfer.evaluation.figures import plot_report
from nlp_transfer.evaluation.metrics import (
    EvaluationReport,
    MetricSuite,
    PrimaryMetric,
    logits_of,
    tune_thresholds,
)
from nlp_transfer.evaluation.record import RECORD_SPLITS, TRAINER_FIGURES
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION

logger = logging.getLogger(__name__)


@dataclass
class FinalEvaluation:
    """The best model's reports per split key ('eval', 'test'), their metrics.json dicts, and tuned thresholds."""

    reports: dict[str, EvaluationReport] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    thresholds: dict[str, Any] | None = None
    """With --tune-threshold: the values (label -> probability), the metric and its value before and after."""
    temperature: Temperature | None = None
    """The fitted temperature(s), to fold into the model before it is saved; None: raw scores kept."""
    calibration: dict[str, Any] | None = None
    """metrics.json's `calibration`: method, temperature, the rows it was fitted on, figures before/after."""
    conformal: dict[str, Any] | None = None
    """The quantiles the folder keeps (`conformal_settings`), plus metrics.json's coverage on test/validation."""
    abstention: dict[str, Any] | None = None
    """metrics.json's `abstention`: the risk-coverage report of the detail split (test, else validation)."""
    uncalibrated_bins: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    """Reliability bins of the raw scores per split key, drawn beside the calibrated ones."""

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
    calibration: str = "temperature",
) -> FinalEvaluation:
    """Score validation (and test) with the suite, after calibrating on validation; with `tune`, thresholds too.

    The training Trainer gathers the predictions (across processes too, with the run's loss weights in its
    loss). Then, in this order, all on validation: the temperature (unless `calibration` is 'none'), the
    conformal quantiles of the calibrated scores, and with `tune` the thresholds on the calibrated scores. Every
    split is then scored as the saved model will score it. Chunked splits are scored per document: their chunks'
    logits (scaled) aggregated as `chunk_aggregate` says.
    """
    keys = {**{key: split for key, split in RECORD_SPLITS.items() if split in encoded}, **extra_splits(encoded)}
    raw = {key: trainer.predict(encoded[split], metric_key_prefix=key) for key, split in keys.items()}

    def documents(key: str, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The split's logits times `inverse`, per document (a chunk aggregation sees the scaled logits)."""
        scaled = np.asarray(logits_of(raw[key].predictions), dtype=np.float64) * inverse
        return per_document(scaled, raw[key].label_ids, chunk_aggregate, suite.task)

    unscaled = {
        key: per_document(logits_of(out.predictions), out.label_ids, chunk_aggregate, suite.task)
        for key, out in raw.items()
    }
    final = FinalEvaluation()
    rows = len(unscaled["eval"][1]) if "eval" in unscaled else 0
    if calibration != "none" and suite.task != REGRESSION and rows:
        if rows >= MIN_ROWS:
            final.temperature = _fit_temperature(documents, unscaled["eval"][1], suite)
        else:
            reason = f"{rows} validation rows are too few to fit a temperature ({MIN_ROWS} needed): scores left raw"
            logger.warning("Calibration: %s; give a --validation-file or use 'nlp-transfer calibrate'.", reason)
            final.calibration = {"method": "none", "reason": reason}
    inverse = None if final.temperature is None else 1 / final.temperature.values
    logits = {key: unscaled[key] if inverse is None else documents(key, inverse) for key in raw}
    outputs = {key: PredictionOutput(*logits[key], raw[key].metrics) for key in raw}
    if final.temperature is not None:
        final.calibration = _calibration_record(final.temperature, unscaled, outputs, suite)
        final.uncalibrated_bins = {key: reliability_bins(*unscaled[key], suite.task) for key in outputs}
    if "eval" in outputs:
        final.conformal = _conformal_record(outputs, suite)
    if tune:
        final.thresholds = _tune_on_validation(suite, primary, outputs["eval"])
    _score_splits(trainer, raw, outputs, suite, inverse, final)
    if suite.task != REGRESSION and outputs:
        detail = "test" if "test" in outputs else "eval"
        final.abstention = {
            "split": RECORD_SPLITS[detail],
            **abstention_report(suite, outputs[detail].predictions, outputs[detail].label_ids, final.threshold_values),
        }
    return final


def _score_splits(
    trainer: Any,
    raw: dict[str, Any],
    outputs: dict[str, PredictionOutput],
    suite: MetricSuite,
    inverse: np.ndarray | None,
    final: FinalEvaluation,
) -> None:
    """Every split scored with the suite as the saved model scores it, into `final.reports` and `final.records`
    (beside Trainer's own figures of the split; the loss is the calibrated logits' loss)."""
    for key, output in outputs.items():
        report = suite.evaluate(output.predictions, output.label_ids, thresholds=final.threshold_values)
        trainer_figures = {
            name.removeprefix(f"{key}_"): value
            for name, value in output.metrics.items()
            if name.removeprefix(f"{key}_") in TRAINER_FIGURES
        }
        if inverse is not None and "loss" in trainer_figures:  # the saved (calibrated) model's loss, not the raw one's
            trainer_figures["loss"] = _training_loss(trainer, raw[key], inverse, suite.task)
        final.reports[key] = report
        final.records[key] = {**report.to_dict(), **trainer_figures}


def _training_loss(trainer: Any, output: Any, inverse: np.ndarray, task: str) -> float:
    """The loss Trainer reports (the model's own, or the class-weighted one), of the logits scaled by 1/T: what the
    saved model scores. Chunked splits: over their windows, as Trainer computed it."""
    import torch
    from torch.nn import functional

    logits = torch.as_tensor(np.asarray(logits_of(output.predictions), dtype=np.float64) * inverse).float()
    labels = torch.as_tensor(np.asarray(window_labels(output.label_ids)[0]))
    weights = getattr(trainer, "loss_weights", None)
    if weights is not None:
        return float(weights.loss(logits, labels))
    if task == MULTI_LABEL:
        return float(functional.binary_cross_entropy_with_logits(logits, labels.float()))
    return float(functional.cross_entropy(logits, labels.long().view(-1)))


def _fit_temperature(documents: Any, labels: np.ndarray, suite: MetricSuite) -> Temperature:
    """The temperature(s) minimising validation NLL, logged with how much they change the scores."""
    values = fit_temperature(lambda inverse: documents("eval", inverse)[0], labels, suite.task, suite.num_labels)
    temperature = Temperature(values, rows=len(labels))
    shown = f"{values[0]:.3f}" if len(values) == 1 else f"{values.min():.3f}-{values.max():.3f} over labels"
    logger.info("Calibration: temperature %s fitted on %d validation rows", shown, len(labels))
    return temperature


def _calibration_record(
    temperature: Temperature,
    unscaled: dict[str, tuple[np.ndarray, np.ndarray]],
    outputs: dict[str, PredictionOutput],
    suite: MetricSuite,
) -> dict[str, Any]:
    """metrics.json's `calibration`: what was fitted, on what, and ECE / log loss / Brier before and after."""
    record: dict[str, Any] = {
        "method": "temperature",
        "temperature": temperature.to_json(suite.labels, suite.task),
        "fitted_on": {"split": temperature.split, "rows": temperature.rows},
    }
    for key, output in outputs.items():
        before = calibration_figures(*unscaled[key], suite.task, suite.labels)
        after = calibration_figures(output.predictions, output.label_ids, suite.task, suite.labels)
        record[key] = {"before": before, "after": after}
        logger.info(
            "Calibration on %s: ECE %.4f -> %.4f, log loss %.4f -> %.4f",
            RECORD_SPLITS.get(key, key),
            before["ece"],
            after["ece"],
            before["log_loss"],
            after["log_loss"],
        )
    return record


def _conformal_record(outputs: dict[str, PredictionOutput], suite: MetricSuite) -> dict[str, Any]:
    """The conformal quantiles of validation's (calibrated) scores, and their coverage on every other split."""
    validation = outputs["eval"]
    record = conformal_settings(suite.scores(validation.predictions), validation.label_ids, suite.task)
    for key, output in outputs.items():
        if key == "eval":
            continue
        record[key] = {
            f"{level}": coverage_report(
                suite.scores(output.predictions),
                output.label_ids,
                suite.task,
                record["quantiles"][level_key(level)],
                level_key(level),
            )
            for level in REPORTED_COVERAGES
        }
    return record


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
    before = None
    if final.calibration is not None and key in final.uncalibrated_bins:
        before = (final.uncalibrated_bins[key], final.calibration[key]["before"]["ece"])
    return plot_report(final.reports[key], suite.labels, folder, RECORD_SPLITS[key], before)
