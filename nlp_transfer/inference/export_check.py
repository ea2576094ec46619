"""Verification of an export against PyTorch: what `nlp-transfer export` checks before it writes anything.

It owns the comparison of each exported form with the PyTorch model on the same validation texts (decision
agreement, largest logit difference, the primary metric, latency), the report written as export_report.json,
the error raised when a form disagrees too much, and the table `nlp-transfer export` prints.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics.suite import decide, probabilities_from_logits, threshold_vector
from nlp_transfer.inference.onnx_runtime import OnnxSequenceClassifier
from nlp_transfer.inference.predict import Classifier
from nlp_transfer.tables import markdown_table
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION

MIN_AGREEMENT = {"fp32": 0.995, "int8": 0.98}
"""The share of validation texts whose decision must equal PyTorch's, by form, unless --min-agreement says."""
REGRESSION_TOLERANCE = 0.01
"""Regression has no decisions: a prediction agrees when it is within this share of the label range."""
LATENCY_TEXTS = {1: 64, 32: 256}
"""Texts timed at each batch size (fewer when validation has fewer)."""


@dataclass
class FormCheck:
    """One exported form against the PyTorch model, on the same validation texts."""

    file: str
    max_abs_logit_difference: float
    label_agreement: float
    primary_metric: float | None
    min_agreement: float
    passed: bool


@dataclass
class ExportReport:
    """What export_report.json holds: the forms, their verification, and their speed beside PyTorch's."""

    model: str
    format: str
    quantize: str | None
    deployed_file: str
    validation: dict[str, Any]
    primary_metric: str
    pytorch_primary_metric: float | None
    forms: dict[str, FormCheck] = field(default_factory=dict)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    """form -> {batch_1_ms (median per text), batch_32_texts_per_s, batch_32_ms (per batch)}; pytorch included."""
    opset: int | None = None
    max_length: int | None = None
    long_text: str | None = None
    """How the verified runs read a text: cut at max_length tokens, a longer one read by long_text (as in training)."""

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.forms.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


class ExportVerificationError(UserInputError):
    """An exported form disagrees with the PyTorch model more than allowed; nothing was written."""


def _onnx_classifier(path: Path, reference: Classifier) -> Classifier:
    """The exported graph behind a Classifier that reads texts exactly as the reference does."""
    exported = Classifier.from_model(OnnxSequenceClassifier(path, reference.model.config), reference.tokenizer)
    exported.max_length = reference.max_length
    return exported


def label_agreement(
    reference: Classifier, reference_logits: np.ndarray, logits: np.ndarray, labels: np.ndarray
) -> float:
    """Share of texts whose decision equals PyTorch's (with the folder's thresholds); for multi-label every label
    of the text must agree; for regression, predictions within REGRESSION_TOLERANCE of the label range."""
    if not len(logits):
        return 1.0
    if reference.task == REGRESSION:
        spread = float(np.ptp(labels)) or 1.0
        return float(np.mean(np.abs(logits[:, 0] - reference_logits[:, 0]) <= REGRESSION_TOLERANCE * spread))
    vector = threshold_vector(reference.labels, reference.thresholds, reference.task)
    ours = decide(probabilities_from_logits(logits, reference.task), reference.task, vector)
    theirs = decide(probabilities_from_logits(reference_logits, reference.task), reference.task, vector)
    same = ours == theirs
    return float(np.mean(same.all(axis=1) if reference.task == MULTI_LABEL else same))


def _primary_value(suite: Any, primary: str, logits: np.ndarray, labels: np.ndarray) -> float | None:
    value = suite.evaluate(logits, labels, details=False).metrics.get(primary)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def measure_latency(classifier: Classifier, texts: Sequence[str], pairs: Sequence[str] | None) -> dict[str, float]:
    """Median milliseconds per text at batch 1, and texts per second at batch 32, on the same texts for each form."""
    single = list(texts[: LATENCY_TEXTS[1]])
    classifier.logits(single[:2], pairs[:2] if pairs else None, batch_size=1)  # warm-up
    times = []
    for i, text in enumerate(single):
        started = time.perf_counter()
        classifier.logits([text], [pairs[i]] if pairs else None, batch_size=1)
        times.append(time.perf_counter() - started)
    batch = list(texts[: LATENCY_TEXTS[32]])
    batch_pairs = list(pairs[: LATENCY_TEXTS[32]]) if pairs else None
    classifier.logits(batch[:32], batch_pairs[:32] if batch_pairs else None, batch_size=32)  # warm-up
    started = time.perf_counter()
    classifier.logits(batch, batch_pairs, batch_size=32)
    seconds = time.perf_counter() - started
    return {
        "batch_1_ms": round(1000 * statistics.median(times), 3),
        "batch_32_texts_per_s": round(len(batch) / seconds, 1),
        "batch_32_ms": round(1000 * seconds / math.ceil(len(batch) / 32), 2),
        "texts": {"batch_1": len(single), "batch_32": len(batch)},
    }


def _failure_message(report: ExportReport) -> str:
    failed = [(form, check) for form, check in report.forms.items() if not check.passed]
    details = "; ".join(
        f"{form} ({check.file}): {check.label_agreement:.2%} of {report.validation['rows']} decisions agree with "
        f"PyTorch, below the {check.min_agreement:.2%} required (largest logit difference "
        f"{check.max_abs_logit_difference:.3g})"
        for form, check in failed
    )
    return (
        f"Export of {report.model} failed verification on {report.validation['file']}: {details}. Nothing was "
        "written. Check the graph, or accept a lower agreement with --min-agreement."
    )


def summary(report: ExportReport, folder: str) -> str:
    """What `nlp-transfer export` prints: each form's agreement, metric and speed beside PyTorch's."""
    headers = ["form", "decisions = PyTorch's", "max logit difference", report.primary_metric, "ms/text (b1)"]
    headers.append("texts/s (b32)")
    rows = []
    for form in ("pytorch", *report.forms):
        check = report.forms.get(form)
        metric = report.pytorch_primary_metric if check is None else check.primary_metric
        speed = report.latency.get(form, {})
        rows.append(
            [
                form if check is None else f"{form} ({check.file})",
                "-" if check is None else f"{check.label_agreement:.2%}",
                "-" if check is None else f"{check.max_abs_logit_difference:.2e}",
                "-" if metric is None else f"{metric:.4f}",
                str(speed.get("batch_1_ms", "-")),
                str(speed.get("batch_32_texts_per_s", "-")),
            ]
        )
    return (
        f"Exported {report.model} to {folder}: load_classifier runs {report.deployed_file}. Verified on "
        f"{report.validation['rows']} texts of {report.validation['file']}:\n" + markdown_table(headers, rows)
    )
