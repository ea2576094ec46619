"""Bootstrap confidence intervals: how much a metric would move on another sample of the same size.

Percentile bootstrap: resample the evaluated examples with replacement, recompute the metric, and take
the 2.5th and 97.5th percentiles of the recomputed values (for a 95% interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from nlp_transfer.evaluation.metrics.suite import MetricSuite


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval around a point estimate."""

    estimate: float
    lower: float
    upper: float
    confidence: float
    resamples: int
    """Resamples on which the metric was defined (a resample with one class has no ROC-AUC, say)."""

    def to_dict(self) -> dict[str, float]:
        return {
            "estimate": self.estimate,
            "lower": self.lower,
            "upper": self.upper,
            "confidence": self.confidence,
            "resamples": self.resamples,
        }


def bootstrap_intervals(
    suite: MetricSuite,
    logits: np.ndarray,
    references: np.ndarray,
    names: Sequence[str],
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Percentile intervals for the named shipped metrics; a metric undefined on the full data is left out."""
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    scores = suite.scores(logits)
    references = suite.prepare_references(references)
    decisions = suite.decisions(scores)
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(references), len(references)) for _ in range(resamples)]
    alpha = (1 - confidence) / 2
    intervals = {}
    progress = tqdm(
        total=len(names) * resamples, desc="Bootstrap", unit="resample", disable=len(names) * resamples < 2000
    )
    for name in names:
        estimate = suite.score(name, scores, decisions, references)
        if estimate is None:
            progress.update(resamples)
            continue
        values = []
        for index in samples:
            values.append(suite.score(name, scores[index], decisions[index], references[index]))
            progress.update()
        defined = np.array([value for value in values if value is not None], dtype=np.float64)
        if len(defined) == 0:
            continue
        lower, upper = np.quantile(defined, [alpha, 1 - alpha])
        intervals[name] = Interval(float(estimate), float(lower), float(upper), confidence, len(defined))
    progress.close()
    return intervals
