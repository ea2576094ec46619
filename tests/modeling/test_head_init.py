"""The head fitted as a linear probe before fine-tuning (LP-FT): when it is used, and that the model then
computes exactly the probe's logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from sklearn.linear_model import LogisticRegression, Ridge
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from nlp_transfer import UserInputError
from nlp_transfer.modeling.head_init import fit_probe, initialise_head, pooled_features, resolve_head_init
from nlp_transfer.modeling.heads import LOGIT_SCALE, PoolingChoice, classification_config
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL

POOLED = PoolingChoice("mean", "test", own_head=False, normalize=True)
OWN = PoolingChoice("pooler", "test", own_head=True)


def test_auto_probes_a_pooled_head_of_a_pretrained_encoder_only() -> None:
    assert resolve_head_init("auto", POOLED, "full").method == "probe"
    assert resolve_head_init("auto", POOLED, "lora").method == "probe"
    assert resolve_head_init("auto", POOLED, "scratch").method == "random"
    assert resolve_head_init("auto", OWN, "full").method == "random"
    assert resolve_head_init("random", POOLED, "full").reason == "--head-init random"


def test_a_probe_needs_a_pooled_head() -> None:
    with pytest.raises(UserInputError, match="--head-init probe fits the linear layer of a pooled head"):
        resolve_head_init("probe", OWN, "full")


def features_and_labels(classes: int, rows: int = 60, width: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(rows) % classes
    features = rng.normal(size=(rows, width)) + labels[:, None] * 0.8
    return features, labels


@pytest.mark.parametrize("classes", [2, 3])
def test_the_single_label_probe_is_scikit_learns_logistic_regression(classes: int) -> None:
    features, labels = features_and_labels(classes)
    weight, bias = fit_probe(features, labels, SINGLE_LABEL, classes)
    logits = features @ weight.T + bias
    reference = LogisticRegression(C=1.0, max_iter=2000).fit(features, labels)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, reference.predict_proba(features), atol=1e-6)


def test_the_multi_label_probe_fits_each_label_and_a_constant_one_by_its_value() -> None:
    features, labels = features_and_labels(2)
    targets = np.stack([labels, 1 - labels, np.zeros_like(labels)], axis=1).astype(float)
    weight, bias = fit_probe(features, targets, MULTI_LABEL, 3)
    reference = LogisticRegression(C=1.0, max_iter=2000).fit(features, labels)
    np.testing.assert_allclose(weight[0], reference.coef_[0], atol=1e-6)
    assert weight[2].tolist() == [0.0] * 5 and bias[2] == -8.0


def test_the_regression_probe_is_a_ridge() -> None:
    features, labels = features_and_labels(4)
    scores = labels.astype(float) + 0.1
    weight, bias = fit_probe(features, scores, REGRESSION, 1)
    expected = Ridge(alpha=1.0).fit(features, scores.reshape(-1, 1)).predict(features)
    np.testing.assert_allclose((features @ weight.T + bias)[:, 0], np.ravel(expected), atol=1e-8)


def test_the_initialised_model_computes_the_probes_logits(bundled_tokenizer_path: Path) -> None:
    from test_layers import tiny_config

    config = tiny_config("bert")
    config.vocab_size = 30522
    config.num_labels = 3
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(classification_config(config, POOLED)).eval()
    assert model.config.logit_scale == LOGIT_SCALE
    tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_path)
    texts = [f"text number {i} about {['cats', 'dogs', 'birds'][i % 3]}" for i in range(30)]
    dataset = Dataset.from_dict({**tokenizer(texts), "labels": [i % 3 for i in range(30)]})
    result = initialise_head(model, dataset, tokenizer, SINGLE_LABEL, "because")
    assert result.method == "probe" and result.reason == "because"
    features = pooled_features(model, dataset, tokenizer)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)  # normalised
    weight, bias = fit_probe(features, np.asarray(dataset["labels"]), SINGLE_LABEL, 3)
    with torch.inference_mode():
        encoded = tokenizer(texts, padding=True, return_tensors="pt")
        logits = model(**encoded).logits.numpy()
    np.testing.assert_allclose(logits, features @ weight.T + bias, atol=1e-4)
    assert result.probe_train_score == round(float(np.mean(logits.argmax(1) == np.arange(30) % 3)), 4)
