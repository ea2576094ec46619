"""The distillation loss: the student matches the teacher's outputs, and the true labels where a row has one.

Single-label: Hinton et al. (2015)'s soft targets, the KL divergence between the teacher's and the student's
softmax at temperature T, times T^2 so that its gradients keep their size as T changes. Multi-label: the same
idea per label, the binary cross-entropy of the student's sigmoid at T against the teacher's. Regression: the
squared error to the teacher's value (no temperature). A labelled row adds its supervised loss:
`alpha * teacher term + (1 - alpha) * label term`; a row without a label (an unlabelled transfer text) has the
teacher term alone. The loss is the mean over rows.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from nlp_transfer.tasks import MULTI_LABEL, REGRESSION


def teacher_term(student: torch.Tensor, teacher: torch.Tensor, task: str, temperature: float) -> torch.Tensor:
    """Per-row loss of the student's logits against the teacher's, shape (rows,)."""
    if task == REGRESSION:
        return ((student.float() - teacher.float()) ** 2).mean(dim=-1)
    scaled_student, scaled_teacher = student.float() / temperature, teacher.float() / temperature
    if task == MULTI_LABEL:
        targets = torch.sigmoid(scaled_teacher)
        per_label = functional.binary_cross_entropy_with_logits(scaled_student, targets, reduction="none")
        return temperature**2 * per_label.mean(dim=-1)
    log_student = functional.log_softmax(scaled_student, dim=-1)
    log_teacher = functional.log_softmax(scaled_teacher, dim=-1)
    return temperature**2 * (log_teacher.exp() * (log_teacher - log_student)).sum(dim=-1)


def label_term(student: torch.Tensor, labels: torch.Tensor, task: str) -> torch.Tensor:
    """Per-row supervised loss against the true labels (ids, 0/1 vectors or values), shape (rows,)."""
    if task == REGRESSION:
        return (student.float().squeeze(-1) - labels.float().view(-1)) ** 2
    if task == MULTI_LABEL:
        return functional.binary_cross_entropy_with_logits(student.float(), labels.float(), reduction="none").mean(-1)
    return functional.cross_entropy(student.float(), labels.long().view(-1), reduction="none")


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    labelled: torch.Tensor,
    task: str,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """Mean over rows of `alpha * teacher_term + (1 - alpha) * label_term` where `labelled`, else teacher_term.

    `labels` holds a placeholder (any valid value) on unlabelled rows; `labelled` is a boolean per row."""
    soft = teacher_term(student, teacher, task, temperature)
    mask = labelled.bool().view(-1)
    if not bool(mask.any()):
        return soft.mean()
    hard = torch.zeros_like(soft)
    hard[mask] = label_term(student[mask], labels[mask], task)
    per_row = torch.where(mask, alpha * soft + (1.0 - alpha) * hard, soft)
    return per_row.mean()
