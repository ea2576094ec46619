"""Decision thresholds tuned on validation to maximise the primary metric (binary and multi-label).

A binary classifier says "positive" when p(class 1) >= t; a multi-label one says label j when
p(j) >= t_j. 0.5 is rarely the best cut when classes are imbalanced: these functions search it on the
validation predictions. The thresholds are saved with the model and used by prediction.
"""

from __future__ import annotations

import numpy as np

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics.suite import DECISIONS, MULTI_LABEL_THRESHOLD, MetricSuite
from nlp_transfer.tasks import MULTI_LABEL, SINGLE_LABEL

MAX_BINARY_CANDIDATES = 400
MULTI_LABEL_GRID = np.round(np.linspace(0.05, 0.95, 19), 2)
MULTI_LABEL_PASSES = 2


def check_tunable(suite: MetricSuite, primary: str) -> None:
    """Tuning needs a binary or multi-label task and a primary metric computed from decisions."""
    if suite.task == SINGLE_LABEL and suite.num_labels != 2:
        raise UserInputError(
            f"--tune-threshold applies to binary and multi-label tasks; this one has {suite.num_labels} classes "
            "(argmax decides). Leave it off."
        )
    if suite.task not in (SINGLE_LABEL, MULTI_LABEL):
        raise UserInputError("--tune-threshold applies to binary and multi-label tasks, not regression.")
    spec = suite.spec(primary)
    if spec is None or spec.uses != DECISIONS:
        raise UserInputError(
            f"--tune-threshold maximises the primary metric, but {primary} does not depend on the threshold "
            "(or is not a metric the package ships). Choose a decision metric, e.g. --metric-for-best-model f1."
        )


def _value(suite: MetricSuite, primary: str, scores: np.ndarray, decisions: np.ndarray, references: np.ndarray):
    value = suite.score(primary, scores, decisions, references)
    if value is None:
        return -np.inf
    return value if suite.spec(primary).greater_is_better else -value


def tune_thresholds(suite: MetricSuite, primary: str, scores: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """Thresholds (by label name) that maximise `primary` on these validation probabilities."""
    check_tunable(suite, primary)
    references = np.asarray(references).astype(np.int64)
    if suite.task == MULTI_LABEL:
        return _tune_per_label(suite, primary, scores, references)
    positive = scores[:, 1]
    distinct = np.unique(positive)
    if len(distinct) > MAX_BINARY_CANDIDATES:
        distinct = np.unique(np.quantile(positive, np.linspace(0, 1, MAX_BINARY_CANDIDATES)))
    # Cutting midway between neighbouring probabilities separates them; 0.5 is always a candidate.
    candidates = np.unique(np.concatenate([[0.5], (distinct[:-1] + distinct[1:]) / 2]))
    values = [_value(suite, primary, scores, (positive >= t).astype(int), references) for t in candidates]
    best = max(values)
    # Among equally good cuts, the one nearest 0.5 changes the model's behaviour least.
    ties = candidates[np.isclose(values, best)]
    return {suite.labels[1]: float(ties[np.argmin(np.abs(ties - 0.5))])}


def _tune_per_label(suite: MetricSuite, primary: str, scores: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """Coordinate ascent: each label's threshold in turn, the others held, for a few passes."""
    thresholds = np.full(scores.shape[1], MULTI_LABEL_THRESHOLD)
    best = _value(suite, primary, scores, (scores >= thresholds).astype(int), references)
    for _ in range(MULTI_LABEL_PASSES):
        changed = False
        for label in range(scores.shape[1]):
            for candidate in MULTI_LABEL_GRID:
                trial = thresholds.copy()
                trial[label] = candidate
                value = _value(suite, primary, scores, (scores >= trial).astype(int), references)
                if value > best + 1e-12:
                    best, thresholds, changed = value, trial, True
        if not changed:
            break
    return {label: float(t) for label, t in zip(suite.labels, thresholds)}
