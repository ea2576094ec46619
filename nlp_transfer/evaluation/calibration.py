"""Calibrated scores: a temperature fitted on held-out logits, folded into the model's output layer.

A fine-tuned encoder is over-confident: its softmax says 0.99 where it is right four times in five (Guo et al.
2017, "On Calibration of Modern Neural Networks"). Dividing the logits by one temperature T > 1, fitted by
minimising the negative log-likelihood of held-out labels, repairs most of it without changing a single argmax.
Multi-label: one temperature per label (the sign of each logit, hence every 0.5 decision, is kept); a label with
fewer than MIN_PER_CLASS positives or negatives on the held-out rows takes the temperature fitted over all labels.

The temperature is folded into the weights (`fold_temperature`): the output layer's rows and bias are divided by
it, so that every loader of the folder (`load_classifier`, `transformers.pipeline`, the ONNX export, peft) gives
the calibrated scores without knowing about calibration. Regression has no temperature (its interval comes from
`conformal`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_expit, log_softmax

from nlp_transfer.evaluation.metrics import modules as m
from nlp_transfer.evaluation.metrics.suite import calibration_table, probabilities_from_logits
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL

logger = logging.getLogger(__name__)

CALIBRATION_METHODS: tuple[str, ...] = ("temperature", "none")
TEMPERATURE_BOUNDS = (0.05, 20.0)
"""The temperatures searched: from sharpening 20x to flattening 20x (an optimum at a bound is logged)."""
MIN_ROWS = 20
"""Fewer held-out rows than this fit no temperature (the scores stay raw, and the run says why): a handful of
rows, often all decided right, give a temperature that is noise."""
MIN_PER_CLASS = 10
"""Multi-label: held-out positives and negatives a label needs for a temperature of its own."""
CALIBRATION_PROBE = ("A short text to check the folded temperature.", "And a second one, a little longer than it.")
"""The texts `fold_temperature`'s check runs through the model (any texts do: it compares logits)."""
FOLD_TOLERANCE = 1e-3
"""Relative difference allowed between the folded model's logits and the original's divided by T (fp32 noise)."""


@dataclass
class Temperature:
    """Fitted temperatures: one (single-label) or one per label (multi-label), and the rows they came from."""

    values: np.ndarray
    rows: int
    split: str = "validation"

    def scale(self, logits: np.ndarray) -> np.ndarray:
        """Logits divided by the temperature(s), as the folded model computes them."""
        return np.asarray(logits, dtype=np.float64) / self.values

    def to_json(self, labels: Sequence[str], task: str) -> float | dict[str, float]:
        """One number (single-label) or {label: temperature} (multi-label), rounded for reading."""
        if task == MULTI_LABEL:
            return {label: round(float(value), 6) for label, value in zip(labels, self.values)}
        return round(float(self.values[0]), 6)


def fit_temperature(
    logits_at: Callable[[np.ndarray], np.ndarray], labels: np.ndarray, task: str, num_labels: int
) -> np.ndarray:
    """The temperature(s) that minimise held-out negative log-likelihood.

    `logits_at(inverse)` gives the logits with each output multiplied by `inverse` (1 / T, per output): the
    logits themselves times it, or for texts read in chunks, the chunks' scaled logits aggregated per text (an
    attention aggregation weighs chunks by their confidence, which the temperature changes). The NLL is convex
    in 1/T, so a bounded scalar search finds its minimum.
    """
    if task == REGRESSION:
        raise ValueError("regression has no temperature")
    labels = np.asarray(labels)
    low, high = 1 / TEMPERATURE_BOUNDS[1], 1 / TEMPERATURE_BOUNDS[0]
    if task == SINGLE_LABEL:
        labels = labels.astype(np.int64).reshape(-1)

        def nll(inverse: float) -> float:
            scaled = logits_at(np.full(num_labels, inverse))
            return float(-log_softmax(scaled, axis=1)[np.arange(len(labels)), labels].mean())

        separable = bool((np.asarray(logits_at(np.ones(num_labels))).argmax(axis=1) == labels).all())
        return np.array([_temperature(nll, low, high, 1.0, "the validation rows", separable)])
    targets = labels.astype(np.float64)
    logits = np.asarray(logits_at(np.ones(num_labels)), dtype=np.float64)
    signs = 2 * targets - 1
    right = signs * logits > 0

    def binary_nll(inverse: float, columns: Any = slice(None)) -> float:
        return float(-log_expit(signs[:, columns] * logits[:, columns] * inverse).mean())

    shared = _temperature(binary_nll, low, high, 1.0, "the validation rows", bool(right.all()))
    values = np.full(num_labels, shared)
    for j in range(num_labels):
        positives = int(targets[:, j].sum())
        if min(positives, len(targets) - positives) >= MIN_PER_CLASS:
            nll_j = partial(binary_nll, columns=j)
            values[j] = _temperature(nll_j, low, high, shared, f"label {j}", bool(right[:, j].all()))
    return values


def _temperature(
    nll: Callable[[float], float], low: float, high: float, fallback: float, rows: str, separable: bool
) -> float:
    """The temperature minimising `nll` over inverse temperatures in [low, high]; `fallback` where the rows are
    `separable` (every one decided right) or the minimum is the smallest temperature allowed: the log loss then
    falls without end as T -> 0 and says nothing about how sure the model should be on new texts (7 rows of AG
    News, all right, asked for T = 0.07 and multiplied the test log loss by 8)."""
    found = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    inverse = float(found.x)
    if separable or inverse >= high * 0.95:
        logger.warning(
            "Calibration: %s are all classified right with a wide margin, so no temperature can be estimated from "
            "them; %s is used (more or harder validation rows give a real one).",
            rows,
            "the raw scores are kept (T = 1)" if fallback == 1.0 else f"the shared temperature {fallback:.3f}",
        )
        return fallback
    if inverse <= low * 1.01:
        logger.warning(
            "Calibration: the temperature of %s reached its upper bound %g: the model's scores are no better than "
            "chance on them, so they are flattened almost to uniform.",
            rows,
            TEMPERATURE_BOUNDS[1],
        )
    return 1 / inverse


def calibration_figures(logits: np.ndarray, labels: np.ndarray, task: str, names: Sequence[str]) -> dict[str, Any]:
    """ECE, log loss, Brier and accuracy of these logits, computed as the metric suite computes them.

    Multi-label: `ece` over every (text, label) probability (the reliability diagram's bins), `ece_per_label`,
    the mean binary log loss and Brier score over labels, and subset accuracy.
    """
    probabilities = probabilities_from_logits(logits, task)
    labels = np.asarray(labels)
    if task == SINGLE_LABEL:
        references = labels.astype(np.int64).reshape(-1)
        return {
            "ece": _rounded(m.ExpectedCalibrationError().score(references, probabilities)),
            "log_loss": _rounded(m.LogLoss().score(references, probabilities)),
            "brier": _rounded(m.BrierScore().score(references, probabilities)),
            "accuracy": _rounded(float((probabilities.argmax(axis=1) == references).mean())),
        }
    targets = labels.astype(np.float64)
    clipped = np.clip(probabilities, 1e-15, 1 - 1e-15)
    per_label = {name: _rounded(_binary_ece(probabilities[:, j], targets[:, j])) for j, name in enumerate(names)}
    return {
        "ece": _rounded(_binary_ece(probabilities.reshape(-1), targets.reshape(-1))),
        "ece_per_label": per_label,
        "log_loss": _rounded(float(-(targets * np.log(clipped) + (1 - targets) * np.log(1 - clipped)).mean())),
        "brier": _rounded(float(((probabilities - targets) ** 2).mean())),
        "subset_accuracy": _rounded(float(((probabilities >= 0.5) == (targets >= 0.5)).all(axis=1).mean())),
    }


def _binary_ece(probabilities: np.ndarray, targets: np.ndarray) -> float:
    bins = m.calibration_bins(probabilities, targets, m.DEFAULT_CALIBRATION_BINS)
    return sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in bins) / max(len(targets), 1)


def _rounded(value: float) -> float:
    return round(float(value), 6) if math.isfinite(value) else value


def reliability_bins(logits: np.ndarray, labels: np.ndarray, task: str) -> list[dict[str, float]]:
    """The reliability diagram's bins of these logits (the metric suite's `calibration_table`)."""
    return calibration_table(probabilities_from_logits(logits, task), np.asarray(labels).astype(np.int64), task)


# ------------------------------------------------------------------------------------- folding into weights


def output_layer(model: Any) -> tuple[str, Any]:
    """(name, module) of the linear layer that computes the logits: the last Linear outside the encoder with
    one output per label. Under peft, the trained copy (`modules_to_save`), not the frozen original."""
    from torch import nn

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    encoder = f"{getattr(base, 'base_model_prefix', '')}."
    outputs = base.config.num_labels
    found = [
        (name, module)
        for name, module in base.named_modules()
        if isinstance(module, nn.Linear)
        and module.out_features == outputs
        and not name.startswith(encoder)
        and "original_module" not in name.split(".")
    ]
    if not found:
        raise RuntimeError(f"{type(base).__name__} has no linear output layer with {outputs} outputs to calibrate")
    return found[-1]


def probe_batch(tokenizer: Any) -> dict[str, Any]:
    """CALIBRATION_PROBE tokenized as one padded batch: what `fold_temperature` checks the folding on."""
    return dict(tokenizer(list(CALIBRATION_PROBE), return_tensors="pt", padding=True))


def fold_temperature(model: Any, temperatures: np.ndarray, probe: dict[str, Any]) -> str:
    """Divide the output layer's rows (and bias) by the temperature(s): the model then computes logits / T.

    `probe` (a tokenized batch) checks it: the folded model's logits must equal the original's divided by T,
    else the weights are restored and RuntimeError raised (a head this does not understand, e.g. LoRA on the
    output layer). Returns the layer's name, for the record.
    """
    import torch

    name, layer = output_layer(model)
    if any("lora" in part for part in name.split(".")):
        raise RuntimeError(f"the output layer {name} is adapted by LoRA; its temperature cannot be folded")
    was_training = model.training
    model.eval()
    device = layer.weight.device
    inverse = torch.as_tensor(1 / np.asarray(temperatures, dtype=np.float64), dtype=torch.float64, device=device)
    batch = {key: value.to(device) for key, value in probe.items()}
    weight, bias = layer.weight.detach().clone(), None if layer.bias is None else layer.bias.detach().clone()
    try:
        with torch.no_grad():
            before = model(**batch).logits.double()
            layer.weight.copy_((layer.weight.double() * inverse[:, None]).to(layer.weight.dtype))
            if layer.bias is not None:
                layer.bias.copy_((layer.bias.double() * inverse).to(layer.bias.dtype))
            after = model(**batch).logits.double()
        expected = before * inverse
        scale = expected.abs().max().clamp_min(1.0)
        if not torch.allclose(after, expected, atol=float(FOLD_TOLERANCE * scale), rtol=FOLD_TOLERANCE):
            with torch.no_grad():
                layer.weight.copy_(weight)
                if layer.bias is not None:
                    layer.bias.copy_(bias)
            raise RuntimeError(
                f"folding the temperature into {name} did not scale the logits (largest difference "
                f"{float((after - expected).abs().max()):.3g}); the model's head is not a final linear layer"
            )
    finally:
        model.train(was_training)
    return name
