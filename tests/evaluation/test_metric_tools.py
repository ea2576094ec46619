"""Threshold tuning, bootstrap intervals, evaluation plots and loss weights for imbalanced labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.special import logit
from sklearn import metrics as sk
from sklearn.utils.class_weight import compute_class_weight

from nlp_transfer import UserInputError
from nlp_transfer.evaluation.metrics.bootstrap import bootstrap_intervals
from nlp_transfer.evaluation.metrics.plots import plot_confusion_matrix, plot_reliability
from nlp_transfer.evaluation.metrics.suite import MetricSuite
from nlp_transfer.evaluation.metrics.thresholds import check_tunable, tune_thresholds
from nlp_transfer.training.class_weights import LossWeights, label_counts, resolve_loss_weights

BINARY = ["neg", "pos"]
ML_LABELS = ["p", "q", "r"]


def binary_scores(positive: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - positive, positive])


# -------------------------------------------------------------------------------- threshold tuning


def test_tune_threshold_binary_separable_below_one_half() -> None:
    rng = np.random.default_rng(0)
    negatives = rng.uniform(0.02, 0.25, 40)
    positives = rng.uniform(0.30, 0.45, 20)
    p1 = np.concatenate([negatives, positives])
    references = np.array([0] * 40 + [1] * 20)
    suite = MetricSuite("single_label", BINARY)

    tuned = tune_thresholds(suite, "f1", binary_scores(p1), references)
    assert set(tuned) == {"pos"}
    threshold = tuned["pos"]
    assert negatives.max() < threshold <= positives.min()
    f1_tuned = sk.f1_score(references, p1 >= threshold)
    f1_half = sk.f1_score(references, p1 >= 0.5, zero_division=0)
    assert f1_tuned == 1.0
    assert f1_half == 0.0
    # The suite with the tuned threshold reports the tuned value.
    logits = np.column_stack([np.zeros_like(p1), logit(p1)])
    assert MetricSuite("single_label", BINARY, thresholds=tuned).compute(logits, references)["f1"] == 1.0


def test_tune_threshold_binary_overlapping_is_the_best_cut() -> None:
    rng = np.random.default_rng(1)
    references = (rng.random(300) < 0.3).astype(int)
    p1 = np.clip(0.2 + 0.2 * references + rng.normal(scale=0.1, size=300), 0.01, 0.99)
    suite = MetricSuite("single_label", BINARY)
    threshold = tune_thresholds(suite, "f1", binary_scores(p1), references)["pos"]
    f1_tuned = sk.f1_score(references, p1 >= threshold)
    assert f1_tuned >= sk.f1_score(references, p1 >= 0.5, zero_division=0)
    grid_best = max(sk.f1_score(references, p1 >= t, zero_division=0) for t in np.linspace(0.01, 0.99, 197))
    assert f1_tuned >= grid_best - 1e-12
    assert threshold < 0.5


def test_tune_threshold_with_a_lower_is_better_primary() -> None:
    rng = np.random.default_rng(2)
    references = (rng.random((200, 3)) < np.array([0.2, 0.5, 0.1])).astype(int)
    probabilities = np.clip(0.25 + 0.3 * references + rng.normal(scale=0.12, size=references.shape), 0.01, 0.99)
    suite = MetricSuite("multi_label", ML_LABELS)
    tuned = tune_thresholds(suite, "hamming_loss", probabilities, references)
    cut = np.array([tuned[label] for label in ML_LABELS])
    untuned = sk.hamming_loss(references, (probabilities >= 0.5).astype(int))
    assert sk.hamming_loss(references, (probabilities >= cut).astype(int)) < untuned


def test_tune_thresholds_multi_label_improves_micro_f1() -> None:
    rng = np.random.default_rng(3)
    references = (rng.random((200, 3)) < np.array([0.3, 0.5, 0.2])).astype(int)
    # Positives sit mostly below 0.5 for labels p and r: 0.5 misses most of them.
    centers = np.array([[0.15, 0.3, 0.1], [0.4, 0.7, 0.35]])
    probabilities = np.clip(centers[references, np.arange(3)] + rng.normal(scale=0.07, size=(200, 3)), 0.01, 0.99)
    suite = MetricSuite("multi_label", ML_LABELS)
    tuned = tune_thresholds(suite, "micro_f1", probabilities, references)
    assert set(tuned) == set(ML_LABELS)
    cut = np.array([tuned[label] for label in ML_LABELS])
    before = sk.f1_score(references, (probabilities >= 0.5).astype(int), average="micro")
    after = sk.f1_score(references, (probabilities >= cut).astype(int), average="micro")
    assert after >= before
    assert after > before + 0.1
    assert tuned["p"] < 0.5 and tuned["r"] < 0.5


def test_check_tunable_refuses_what_cannot_be_tuned() -> None:
    check_tunable(MetricSuite("single_label", BINARY), "f1")  # allowed: no error
    check_tunable(MetricSuite("multi_label", ML_LABELS), "macro_f1")
    with pytest.raises(UserInputError, match="3 classes"):
        check_tunable(MetricSuite("single_label", ["a", "b", "c"]), "accuracy")
    with pytest.raises(UserInputError, match="regression"):
        check_tunable(MetricSuite("regression", ["score"]), "rmse")
    with pytest.raises(UserInputError, match="roc_auc"):
        check_tunable(MetricSuite("single_label", BINARY), "roc_auc")
    with pytest.raises(UserInputError, match="roc_auc"):
        check_tunable(MetricSuite("multi_label", ML_LABELS), "roc_auc")
    with pytest.raises(UserInputError):
        tune_thresholds(MetricSuite("single_label", BINARY), "log_loss", binary_scores(np.array([0.2, 0.8])), [0, 1])


# -------------------------------------------------------------------------------------- bootstrap


def noisy_binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Same generating process for every n: accuracy around 0.75."""
    rng = np.random.default_rng(seed)
    references = rng.integers(0, 2, n)
    logits = rng.normal(size=(n, 2))
    logits[np.arange(n), references] += 1.0
    return logits, references


def test_bootstrap_interval_contains_the_estimate() -> None:
    logits, references = noisy_binary(300, seed=0)
    suite = MetricSuite("single_label", BINARY)
    intervals = bootstrap_intervals(suite, logits, references, ["accuracy", "roc_auc"], resamples=300, seed=0)
    accuracy = intervals["accuracy"]
    assert accuracy.estimate == pytest.approx(sk.accuracy_score(references, logits.argmax(axis=1)))
    assert accuracy.lower <= accuracy.estimate <= accuracy.upper
    assert accuracy.lower < accuracy.upper
    assert accuracy.confidence == 0.95
    assert accuracy.resamples == 300
    assert intervals["roc_auc"].lower <= intervals["roc_auc"].estimate <= intervals["roc_auc"].upper
    # A 95% interval on 300 examples at p ~ 0.75 is about +-0.05 wide.
    assert 0.02 < accuracy.upper - accuracy.lower < 0.2


def test_bootstrap_interval_narrows_with_more_examples() -> None:
    suite = MetricSuite("single_label", BINARY)
    widths = {}
    for n in (100, 2000):
        logits, references = noisy_binary(n, seed=1)
        interval = bootstrap_intervals(suite, logits, references, ["accuracy"], resamples=300, seed=0)["accuracy"]
        widths[n] = interval.upper - interval.lower
    assert widths[2000] < widths[100] / 2


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    logits, references = noisy_binary(150, seed=2)
    suite = MetricSuite("single_label", BINARY)
    first = bootstrap_intervals(suite, logits, references, ["accuracy", "macro_f1"], resamples=200, seed=7)
    again = bootstrap_intervals(suite, logits, references, ["accuracy", "macro_f1"], resamples=200, seed=7)
    other = bootstrap_intervals(suite, logits, references, ["accuracy", "macro_f1"], resamples=200, seed=8)
    assert first == again
    assert first != other


def test_bootstrap_counts_only_defined_resamples() -> None:
    # One positive in ten: a resample misses it with probability 0.9**10 ~ 0.35, and then has no ROC-AUC.
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(10, 2))
    references = np.array([1] + [0] * 9)
    suite = MetricSuite("single_label", BINARY)
    intervals = bootstrap_intervals(suite, logits, references, ["roc_auc", "accuracy"], resamples=200, seed=0)
    assert intervals["accuracy"].resamples == 200
    assert 80 < intervals["roc_auc"].resamples < 180
    # Undefined on the full data: left out.
    all_negative = np.zeros(10, dtype=int)
    assert set(bootstrap_intervals(suite, logits, all_negative, ["roc_auc", "accuracy"], resamples=20)) == {"accuracy"}


def test_bootstrap_rejects_zero_resamples() -> None:
    logits, references = noisy_binary(20, seed=4)
    with pytest.raises(ValueError):
        bootstrap_intervals(MetricSuite("single_label", BINARY), logits, references, ["accuracy"], resamples=0)


# ------------------------------------------------------------------------------------------ plots


def assert_png(path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 0 and image.size[1] > 0


def test_plot_confusion_matrix_single_and_multi_label(tmp_path) -> None:
    rng = np.random.default_rng(5)
    labels = ["a", "b", "c"]
    logits = rng.normal(size=(40, 3))
    references = rng.integers(0, 3, 40)
    report = MetricSuite("single_label", labels).evaluate(logits, references)
    single = plot_confusion_matrix(report.confusion_matrix, labels, tmp_path / "single.png", "Confusion (test)")
    assert single == tmp_path / "single.png"
    assert_png(single)

    multi_logits = rng.normal(size=(40, 3))
    multi_references = (rng.random((40, 3)) < 0.4).astype(int)
    multi_report = MetricSuite("multi_label", ML_LABELS).evaluate(multi_logits, multi_references)
    assert isinstance(multi_report.confusion_matrix, dict)
    assert_png(plot_confusion_matrix(multi_report.confusion_matrix, ML_LABELS, tmp_path / "multi.png", "Multi"))


def test_plot_reliability(tmp_path) -> None:
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(50, 2)) * 2
    references = rng.integers(0, 2, 50)
    report = MetricSuite("single_label", BINARY).evaluate(logits, references)
    assert report.calibration
    assert_png(plot_reliability(report.calibration, tmp_path / "calibration.png", "Reliability", report.metrics["ece"]))
    assert_png(plot_reliability([], tmp_path / "empty.png", "Reliability"))


# ---------------------------------------------------------------------------------- class weights


def test_balanced_class_weights_equal_sklearn() -> None:
    names = ["a", "b", "c"]
    labels = np.array([0] * 30 + [1] * 6 + [2] * 14)
    counts = label_counts("single_label", labels, 3)
    assert counts == [30, 6, 14]
    weights = resolve_loss_weights("balanced", "single_label", names, counts, len(labels))
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    np.testing.assert_allclose(weights.values, expected)
    assert (weights.kind, weights.mode, weights.labels) == ("class_weight", "balanced", names)
    assert resolve_loss_weights(" Balanced ", "single_label", names, counts, len(labels)).values == weights.values


def test_balanced_pos_weight_multi_label() -> None:
    labels = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0], [0, 0, 1]])
    counts = label_counts("multi_label", labels, 3)
    assert counts == [2, 1, 4]
    weights = resolve_loss_weights("balanced", "multi_label", ML_LABELS, counts, 5)
    assert weights.kind == "pos_weight"
    assert weights.values == pytest.approx([3 / 2, 4 / 1, 1 / 4])
    assert label_counts("regression", [0.1, 0.2], 1) is None


def test_given_weights_are_used_as_given() -> None:
    weights = resolve_loss_weights("1,3", "single_label", BINARY, [10, 2], 12)
    assert weights.values == [1.0, 3.0]
    assert weights.mode == "given"
    assert weights.to_dict() == {"kind": "class_weight", "mode": "given", "weights": {"neg": 1.0, "pos": 3.0}}
    assert resolve_loss_weights(None, "single_label", BINARY, [10, 2], 12) is None
    assert resolve_loss_weights("  ", "single_label", BINARY, [10, 2], 12) is None


@pytest.mark.parametrize(
    ("spec", "task", "counts", "message"),
    [
        ("1,2,3", "single_label", [5, 5], "3 weights for 2 labels"),
        ("1", "single_label", [5, 5], "1 weights for 2 labels"),
        ("1,0", "single_label", [5, 5], "positive"),
        ("1,-2", "single_label", [5, 5], "positive"),
        ("1,nan", "single_label", [5, 5], "positive"),
        ("1,inf", "single_label", [5, 5], "positive"),
        ("1,heavy", "single_label", [5, 5], "comma-separated numbers"),
        ("lots", "single_label", [5, 5], "comma-separated numbers"),
        ("balanced", "single_label", [5, 0], "no example of pos"),
        ("balanced", "multi_label", [10, 3], "every training example"),
        ("balanced", "regression", None, "regression"),
        ("1,1", "regression", None, "regression"),
    ],
)
def test_bad_class_weights_are_user_errors(spec, task, counts, message) -> None:
    with pytest.raises(UserInputError, match=message):
        resolve_loss_weights(spec, task, BINARY, counts, 10)


def test_weighted_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 3)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    weights = LossWeights("single_label", "class_weight", "given", ["a", "b", "c"], [1.0, 3.0, 0.5])
    loss = weights.loss(logits, labels)
    assert torch.allclose(loss, F.cross_entropy(logits, labels, weight=torch.tensor([1.0, 3.0, 0.5])))
    # The weighted mean by hand: sum of w[y] * nll over the sum of w[y].
    w = torch.tensor([1.0, 3.0, 0.5])[labels]
    nll = -torch.log_softmax(logits, dim=1)[torch.arange(6), labels]
    assert torch.allclose(loss, (w * nll).sum() / w.sum())
    assert not torch.allclose(loss, F.cross_entropy(logits, labels))
    ones = LossWeights("single_label", "class_weight", "given", ["a", "b", "c"], [1.0, 1.0, 1.0])
    assert torch.allclose(ones.loss(logits, labels), F.cross_entropy(logits, labels))


def test_weighted_binary_cross_entropy() -> None:
    torch.manual_seed(1)
    logits = torch.randn(5, 3)
    labels = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0], [0, 0, 1]])
    weights = LossWeights("multi_label", "pos_weight", "balanced", ML_LABELS, [1.5, 4.0, 0.25])
    loss = weights.loss(logits, labels)
    pos_weight = torch.tensor([1.5, 4.0, 0.25])
    assert torch.allclose(loss, F.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=pos_weight))
    target = labels.float()
    by_hand = -(pos_weight * target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits)).mean()
    assert torch.allclose(loss, by_hand)
    ones = LossWeights("multi_label", "pos_weight", "given", ML_LABELS, [1.0, 1.0, 1.0])
    assert torch.allclose(ones.loss(logits, labels), F.binary_cross_entropy_with_logits(logits, target))
