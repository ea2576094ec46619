"""Prediction sets with guaranteed coverage (split conformal prediction), and abstention by confidence.

Split conformal prediction (Angelopoulos & Bates, "A Gentle Introduction to Conformal Prediction", 2021): score
each held-out row by how badly the model fits its true answer (its nonconformity), and keep the
ceil((n + 1) * c)-th smallest of the n scores as the quantile q_c. For a new text exchangeable with those rows,
the set of answers scoring at most q_c holds the true one with probability at least c (and below c + 1/(n + 1)).

- single-label: score 1 - p(true label); the set holds every label with p >= 1 - q (it can be empty: no label
  is likely enough, the model's way to say "I don't know").
- multi-label: score max over the true labels of 1 - p(label); the set {label: p >= 1 - q} then holds *all* of
  a text's true labels with probability c.
- regression: score |y - prediction|; the interval is prediction +- q.

Coverage is chosen at prediction time, so the quantiles are saved at every level of COVERAGE_LEVELS; a level in
between is served by the next one up (more coverage, never less). A level whose ceil((n + 1) * c) exceeds n has
no finite quantile (too few held-out rows): its set holds every label (an unbounded interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nlp_transfer.errors import UserInputError
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION

if TYPE_CHECKING:
    from nlp_transfer.evaluation.metrics import MetricSuite

COVERAGE_LEVELS: tuple[float, ...] = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))
"""The coverage levels whose quantiles are saved: 0.50, 0.51, ..., 0.99."""
REPORTED_COVERAGES: tuple[float, ...] = (0.8, 0.9)
"""The levels metrics.json reports empirical coverage for."""
ANSWERED_SHARES: tuple[float, ...] = (1.0, 0.9, 0.8, 0.5)
"""The shares of texts answered at which the risk-coverage report gives accuracy."""
SCORES = {
    "single_label": "1 - p(true label)",
    "multi_label": "max over true labels of 1 - p(label)",
    "regression": "|label - prediction|",
}


def level_key(level: float) -> str:
    return f"{level:.2f}"


def nonconformity(outputs: np.ndarray, references: np.ndarray, task: str) -> np.ndarray:
    """Each row's score: probabilities (classification) or predictions (regression) against its true answer."""
    outputs, references = np.asarray(outputs, dtype=np.float64), np.asarray(references)
    if task == REGRESSION:
        return np.abs(references.astype(np.float64).reshape(-1) - outputs.reshape(-1))
    if task == MULTI_LABEL:
        truth = references.astype(bool)
        return np.where(truth, 1 - outputs, 0.0).max(axis=1)  # a text with no labels is always covered
    return 1 - outputs[np.arange(len(references)), references.astype(np.int64).reshape(-1)]


def conformal_quantiles(scores: np.ndarray, levels: Sequence[float] = COVERAGE_LEVELS) -> dict[str, float | None]:
    """{level: q} for each coverage level: the ceil((n + 1) * level)-th smallest score, None where n is too few."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    n = len(ordered)
    quantiles: dict[str, float | None] = {}
    for level in levels:
        rank = math.ceil((n + 1) * level - 1e-9)  # the 1e-9: (n + 1) * 0.9 must not round up past an integer
        quantiles[level_key(level)] = float(ordered[rank - 1]) if rank <= n else None
    return quantiles


def conformal_settings(outputs: np.ndarray, references: np.ndarray, task: str) -> dict[str, Any]:
    """What a folder keeps for `predict --coverage`, from held-out probabilities (predictions, for regression)
    and their true answers: the score's definition, the rows, and the quantile per level."""
    scores = nonconformity(outputs, references, task)
    return {"score": SCORES[task], "rows": len(scores), "quantiles": conformal_quantiles(scores)}


def check_coverage(coverage: float) -> None:
    """--coverage is a share strictly between 0 and 1 (checked before any model loads)."""
    if not 0 < coverage < 1:
        raise UserInputError(
            f"--coverage must be between 0 and 1 (e.g. 0.9 for sets that hold the true label for 90% of texts), "
            f"not {coverage}."
        )


def check_min_confidence(value: float) -> None:
    """--min-confidence is a probability, 0 and 1 included."""
    if not 0 <= value <= 1:
        raise UserInputError(f"--min-confidence must be between 0 and 1 (e.g. 0.8), not {value}.")


def resolve_level(coverage: float, saved: dict[str, Any] | None, where: str) -> tuple[str, float | None]:
    """(level used, its quantile) for a requested coverage: the saved level equal to it or the next one up."""
    check_coverage(coverage)
    if not saved or not saved.get("quantiles"):
        raise UserInputError(
            f"{where} holds no conformal quantiles: it was trained before prediction sets existed (or by another "
            "tool). Train it again with this version of nlp-transfer to use --coverage."
        )
    levels = sorted(float(level) for level in saved["quantiles"])
    above = [level for level in levels if level >= coverage - 1e-9]
    if not above:
        raise UserInputError(
            f"--coverage {coverage}: the highest coverage this folder can guarantee is {levels[-1]:.2f}; ask for "
            "that or less."
        )
    key = level_key(above[0])
    return key, saved["quantiles"][key]


def prediction_sets(probabilities: np.ndarray, quantile: float | None, task: str) -> np.ndarray:
    """A boolean (texts x labels) membership matrix: labels with 1 - p <= q (every label where q is None)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if quantile is None:
        return np.ones(probabilities.shape, dtype=bool)
    return (1 - probabilities) <= quantile


def intervals(predictions: np.ndarray, quantile: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each prediction's interval; infinite where q is None."""
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    half = np.inf if quantile is None else quantile
    return predictions - half, predictions + half


def coverage_report(
    outputs: np.ndarray, references: np.ndarray, task: str, quantile: float | None, level: str
) -> dict[str, Any]:
    """Empirical coverage of the sets (intervals) at one level, and their mean size (width)."""
    scores = nonconformity(outputs, references, task)
    covered = np.ones(len(scores), dtype=bool) if quantile is None else scores <= quantile
    report: dict[str, Any] = {"level": level, "quantile": quantile, "coverage": round(float(covered.mean()), 6)}
    if task == REGRESSION:
        report["mean_interval_width"] = None if quantile is None else round(2 * quantile, 6)
        return report
    members = prediction_sets(outputs, quantile, task)
    sizes = members.sum(axis=1)
    report["mean_set_size"] = round(float(sizes.mean()), 6)
    report["empty_sets"] = round(float((sizes == 0).mean()), 6)
    return report


# ------------------------------------------------------------------------------------------------ abstention


def confidence(probabilities: np.ndarray, decisions: np.ndarray, task: str) -> np.ndarray:
    """How sure each decision is: the decided label's probability (single-label); for multi-label, the least
    sure of its per-label decisions, min over labels of max(p, 1 - p)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if task == MULTI_LABEL:
        return np.maximum(probabilities, 1 - probabilities).min(axis=1)
    return probabilities[np.arange(len(probabilities)), np.asarray(decisions, dtype=np.int64)]


def risk_coverage(sureness: np.ndarray, correct: np.ndarray, shares: Sequence[float] = ANSWERED_SHARES) -> dict:
    """Accuracy when only the most confident share of texts is answered, the --min-confidence that answers
    that share, and the area under the risk-coverage curve (AURC: mean error over every cut; lower is better)."""
    sureness, correct = np.asarray(sureness, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if len(sureness) == 0:
        return {"accuracy_at": {}, "confidence_at": {}, "aurc": None, "texts": 0}
    order = np.argsort(-sureness, kind="stable")
    hits = np.cumsum(correct[order])
    answered = np.arange(1, len(order) + 1)
    accuracy_at, confidence_at = {}, {}
    for share in shares:
        count = max(1, math.ceil(share * len(order) - 1e-9))
        accuracy_at[f"{share:.1f}"] = round(float(hits[count - 1] / count), 6)
        confidence_at[f"{share:.1f}"] = round(float(sureness[order[count - 1]]), 6)
    aurc = float((1 - hits / answered).mean())
    return {"accuracy_at": accuracy_at, "confidence_at": confidence_at, "aurc": round(aurc, 6), "texts": len(order)}


def abstention_report(
    suite: MetricSuite, logits: np.ndarray, labels: np.ndarray, thresholds: dict[str, float] | None = None
) -> dict[str, Any]:
    """Risk-coverage of these predictions: accuracy (multi-label: exact match) when only the most confident
    texts are answered, and the --min-confidence that answers each share."""
    scores = suite.scores(logits)
    decisions = suite.decisions(scores, thresholds)
    references = suite.prepare_references(labels)
    correct = (decisions == references).all(axis=1) if suite.task == MULTI_LABEL else decisions == references
    return risk_coverage(confidence(scores, decisions, suite.task), correct)
