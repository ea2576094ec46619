"""Loss weights for imbalanced labels: per-class weights (single-label) or pos_weight (multi-label).

`--class-weights balanced` weights each class by n_examples / (n_classes * n_class_examples), the
inverse-frequency rule of scikit-learn's `compute_class_weight("balanced")`; for multi-label each label's
positives get pos_weight = negatives / positives (torch's `BCEWithLogitsLoss` convention). A list of
numbers gives the weights directly, in label order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nlp_transfer.config.checks import BALANCED, parse_class_weights
from nlp_transfer.errors import UserInputError
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL


@dataclass(frozen=True)
class LossWeights:
    """Weights the classification loss uses; `kind` is 'class_weight' (single-label) or 'pos_weight'."""

    task: str
    kind: str
    mode: str
    """'balanced' or 'given'."""
    labels: list[str]
    values: list[float]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weights = torch.tensor(self.values, dtype=logits.dtype, device=logits.device)
        if self.task == MULTI_LABEL:
            return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=weights)
        return F.cross_entropy(logits.view(-1, len(self.values)), labels.view(-1).long(), weight=weights)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "mode": self.mode, "weights": dict(zip(self.labels, self.values))}


def label_counts(task: str, labels: Any, num_labels: int) -> list[int] | None:
    """Training examples per class (single-label) or positives per label (multi-label); None for regression."""
    if task == SINGLE_LABEL:
        return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels).tolist()
    if task == MULTI_LABEL:
        return np.asarray(labels, dtype=np.float64).sum(axis=0).astype(int).tolist()
    return None


def resolve_loss_weights(
    spec: str | None, task: str, names: Sequence[str], counts: Sequence[int] | None, num_examples: int
) -> LossWeights | None:
    """Parse `--class-weights` against the task and the training label counts; None when not asked."""
    parsed = parse_class_weights(spec)
    if parsed is None:
        return None
    if task == REGRESSION:
        raise UserInputError("--class-weights applies to classification; this is a regression task. Leave it off.")
    kind = "pos_weight" if task == MULTI_LABEL else "class_weight"
    names = list(names)
    if parsed == BALANCED:
        return LossWeights(
            task, kind, BALANCED, names, _balanced_weights(task, names, list(counts or []), num_examples)
        )
    if len(parsed) != len(names):
        raise UserInputError(
            f"--class-weights gives {len(parsed)} weights for {len(names)} labels ({', '.join(names)}); "
            "give one per label, in that order."
        )
    return LossWeights(task, kind, "given", names, parsed)


def _balanced_weights(task: str, names: list[str], counts: list[int], num_examples: int) -> list[float]:
    """Inverse class frequency (single-label), or negatives/positives per label (multi-label)."""
    empty = [name for name, count in zip(names, counts) if count == 0]
    if empty:
        raise UserInputError(
            f"--class-weights balanced: the training labels have no example of {', '.join(empty)}, so no "
            "inverse frequency exists. Give the weights as a list, or add examples of those labels."
        )
    if task == MULTI_LABEL:
        full = [name for name, count in zip(names, counts) if count == num_examples]
        if full:
            raise UserInputError(
                f"--class-weights balanced: every training example has label(s) {', '.join(full)}, so "
                "negatives/positives is 0. Give the weights as a list."
            )
        return [float((num_examples - count) / count) for count in counts]
    return [float(num_examples / (len(names) * count)) for count in counts]
