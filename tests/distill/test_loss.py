"""The distillation loss equals a hand computation on fixed logits, for each task and for unlabelled rows."""

from __future__ import annotations

import math

import pytest
import torch

from nlp_transfer.distill.loss import distillation_loss
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL

STUDENT = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
TEACHER = torch.tensor([[3.0, 1.0, -2.0], [0.0, 2.0, 0.0]])


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def kl_at(teacher: list[float], student: list[float], t: float) -> float:
    p = softmax([v / t for v in teacher])
    q = softmax([v / t for v in student])
    return t * t * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def cross_entropy(student: list[float], label: int) -> float:
    return -math.log(softmax(student)[label])


def test_single_label_mixes_the_teacher_term_and_the_label_term_on_labelled_rows_only():
    labels = torch.tensor([0, 0])
    labelled = torch.tensor([True, False])
    loss = distillation_loss(STUDENT, TEACHER, labels, labelled, SINGLE_LABEL, temperature=2.0, alpha=0.3)
    rows = STUDENT.tolist(), TEACHER.tolist()
    first = 0.3 * kl_at(rows[1][0], rows[0][0], 2.0) + 0.7 * cross_entropy(rows[0][0], 0)
    second = kl_at(rows[1][1], rows[0][1], 2.0)  # unlabelled: the teacher alone
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-5)


def test_without_labelled_rows_the_loss_is_the_mean_teacher_term():
    loss = distillation_loss(STUDENT, TEACHER, torch.tensor([0, 0]), torch.tensor([False, False]), SINGLE_LABEL, 4.0)
    expected = sum(kl_at(t, s, 4.0) for t, s in zip(TEACHER.tolist(), STUDENT.tolist())) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_a_student_equal_to_its_teacher_has_no_teacher_loss():
    loss = distillation_loss(TEACHER, TEACHER, torch.tensor([0, 0]), torch.tensor([False, False]), SINGLE_LABEL)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_multi_label_uses_the_teachers_sigmoid_at_the_temperature_and_the_true_label_vectors():
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    labelled = torch.tensor([True, False])
    loss = distillation_loss(STUDENT, TEACHER, labels, labelled, MULTI_LABEL, temperature=2.0, alpha=0.5)
    s, t, y = STUDENT.tolist(), TEACHER.tolist(), labels.tolist()

    def soft(row: int) -> float:
        return 4.0 * sum(bce(s[row][j] / 2, 1 / (1 + math.exp(-t[row][j] / 2))) for j in range(3)) / 3

    first = 0.5 * soft(0) + 0.5 * sum(bce(s[0][j], y[0][j]) for j in range(3)) / 3
    assert loss.item() == pytest.approx((first + soft(1)) / 2, rel=1e-5)


def test_regression_is_the_squared_error_to_the_teacher_and_to_the_true_value():
    student, teacher = torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [1.0]])
    labels = torch.tensor([4.0, 0.0])
    loss = distillation_loss(student, teacher, labels, torch.tensor([True, False]), REGRESSION, alpha=0.25)
    first = 0.25 * (1.0 - 2.0) ** 2 + 0.75 * (1.0 - 4.0) ** 2
    assert loss.item() == pytest.approx((first + (3.0 - 1.0) ** 2) / 2, rel=1e-5)


def test_alpha_zero_on_labelled_rows_is_the_plain_cross_entropy():
    labels = torch.tensor([2, 1])
    loss = distillation_loss(STUDENT, TEACHER, labels, torch.tensor([True, True]), SINGLE_LABEL, alpha=0.0)
    expected = torch.nn.functional.cross_entropy(STUDENT, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
