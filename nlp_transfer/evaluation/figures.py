"""The figures of an evaluation report: the confusion matrix and the reliability diagram, drawn into a folder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from nlp_transfer.evaluation.metrics import (
    EvaluationReport,
)
from nlp_transfer.evaluation.metrics.plots import plot_confusion_matrix, plot_reliability
from nlp_transfer.outputs import CALIBRATION_PNG, CONFUSION_MATRIX_PNG

logger = logging.getLogger(__name__)

MAX_PLOTTED_LABELS = 100
"""Above this many labels the confusion-matrix plot is skipped: its ticks no longer read, and drawing it takes
minutes and gigabytes (200 labels: about a minute; 700: killed for memory on a 23 GB machine). The matrix itself
stays in metrics.json."""


def plot_report(
    report: EvaluationReport,
    labels: Sequence[str],
    folder: Path,
    split: str,
    uncalibrated: tuple[list[dict[str, float]], float] | None = None,
) -> dict[str, str]:
    """Draw the confusion matrix (up to MAX_PLOTTED_LABELS labels) and the reliability diagram; {kind: file}.

    `uncalibrated`: (bins, ECE) of the scores before calibration, drawn beside the calibrated ones."""
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
    before, before_ece = uncalibrated if uncalibrated is not None else (None, None)
    plot_reliability(
        report.calibration or [],
        folder / CALIBRATION_PNG,
        f"Reliability ({split})",
        report.metrics.get("ece"),
        before=before,
        before_ece=before_ece,
    )
    return {**plots, "calibration": CALIBRATION_PNG}
