"""Pictures of an evaluation: the confusion matrix and the reliability diagram, as PNG files.

matplotlib draws them with its non-interactive Agg backend, so they render on servers without a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(confusion: Any, labels: Sequence[str], path: Path, title: str) -> Path:
    """Single-label: true x predicted counts. Multi-label: one row per label with TN, FP, FN, TP."""
    plt = pyplot()
    if isinstance(confusion, dict):  # multi-label: label -> {tn, fp, fn, tp}
        columns = ["tn", "fp", "fn", "tp"]
        matrix = np.array([[confusion[label][c] for c in columns] for label in labels])
        x_labels, y_labels, x_title, y_title = [c.upper() for c in columns], list(labels), "outcome", "label"
    else:
        matrix = np.asarray(confusion)
        x_labels, y_labels, x_title, y_title = list(labels), list(labels), "predicted", "true"
    size = max(4.0, 0.5 * max(matrix.shape) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(len(x_labels)), x_labels, rotation=45, ha="right")
    axes.set_yticks(range(len(y_labels)), y_labels)
    axes.set_xlabel(x_title)
    axes.set_ylabel(y_title)
    axes.set_title(title)
    if matrix.size <= 400:  # numbers stay readable up to 20 x 20
        middle = matrix.max() / 2 if matrix.size else 0
        for (row, column), value in np.ndenumerate(matrix):
            color = "white" if value > middle else "black"
            axes.text(column, row, str(int(value)), ha="center", va="center", color=color, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_reliability(
    bins: Sequence[dict[str, float]],
    path: Path,
    title: str,
    ece: float | None = None,
    before: Sequence[dict[str, float]] | None = None,
    before_ece: float | None = None,
) -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration.

    `before`: the bins of the raw (uncalibrated) scores, drawn as a line beside the calibrated bars.
    """
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    if bins:
        centers = [(row["lower"] + row["upper"]) / 2 for row in bins]
        widths = [row["upper"] - row["lower"] for row in bins]
        observed = "calibrated" if before is not None else "observed"
        axes.bar(centers, [row["accuracy"] for row in bins], width=widths, edgecolor="black", alpha=0.7, label=observed)
        axes.plot(
            [row["confidence"] for row in bins],
            [row["accuracy"] for row in bins],
            "o",
            color="darkred",
            label="mean confidence",
        )
    if before:
        raw = "before calibration" if before_ece is None else f"before calibration (ECE {before_ece:.3f})"
        axes.plot(
            [row["confidence"] for row in before], [row["accuracy"] for row in before], "s-", color="orange", label=raw
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("predicted probability (confidence)")
    axes.set_ylabel("observed frequency (accuracy)")
    axes.set_title(title if ece is None else f"{title} (ECE {ece:.3f})")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
