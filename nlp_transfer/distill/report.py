"""Teacher and student side by side on the same texts: what `distill_report.json` holds and `distill` prints.

Per split (validation, and test when given): the primary metric of each and the share of texts where the
student decides as the teacher does. Then what serving costs on this machine's CPU, measured one after the other
in one process on the same texts: texts per second at batch 1 and batch 32 (`export_check.measure_latency`),
size on disk and parameters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_transfer.evaluation.metrics import reported_primary, reported_suite
from nlp_transfer.inference.export_check import label_agreement, measure_latency
from nlp_transfer.inference.predict import Classifier
from nlp_transfer.outputs import ADAPTER_CONFIG_FILE, DISTILL_REPORT_FILE
from nlp_transfer.settings import PackageSettings
from nlp_transfer.tables import markdown_table

REPORT_FILE = DISTILL_REPORT_FILE
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx")


@dataclass
class SplitComparison:
    """One labelled file scored by both models."""

    file: str
    rows: int
    teacher: dict[str, Any]
    student: dict[str, Any]
    agreement: float
    """Share of texts whose decision the student shares with the teacher (regression: within 1% of the range)."""


@dataclass
class ServingCost:
    """What one model costs to serve on this CPU."""

    batch_1_texts_per_s: float
    batch_32_texts_per_s: float
    batch_1_ms: float
    size_mb: float
    parameters: int


@dataclass
class DistillReport:
    """distill_report.json: how the student was made and how it compares with its teacher."""

    teacher: str
    student: str
    method: dict[str, Any]
    primary_metric: str
    transfer: dict[str, Any]
    training: dict[str, Any]
    splits: dict[str, SplitComparison] = field(default_factory=dict)
    cost: dict[str, ServingCost] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def speedup_batch_32(self) -> float:
        return self.cost["student"].batch_32_texts_per_s / self.cost["teacher"].batch_32_texts_per_s


def primary_metric(teacher: Classifier) -> str:
    return reported_primary(teacher.task, len(teacher.labels), PackageSettings.read(teacher.model).primary_metric)


def compare_on(
    teacher: Classifier,
    student: Classifier,
    file: str,
    texts: list[str],
    pairs: list[str] | None,
    labels: np.ndarray,
    batch_size: int,
) -> SplitComparison:
    """Both models on one labelled file: every metric of the suite, and the decisions they share."""
    primary = primary_metric(teacher)
    teacher_logits = teacher.logits(texts, pairs, batch_size)
    student_logits = student.logits(texts, pairs, batch_size)
    scores = {}
    for name, model, logits in (("teacher", teacher, teacher_logits), ("student", student, student_logits)):
        suite = reported_suite(model.task, model.labels, None, primary, model.thresholds)
        scores[name] = _finite(suite.evaluate(logits, labels, details=False).metrics)
    agreement = label_agreement(teacher, teacher_logits, student_logits, labels)
    return SplitComparison(file, len(texts), scores["teacher"], scores["student"], round(agreement, 6))


def serving_cost(classifier: Classifier, folder: Path, texts: list[str], pairs: list[str] | None) -> ServingCost:
    latency = measure_latency(classifier, texts, pairs)
    return ServingCost(
        batch_1_texts_per_s=round(1000.0 / latency["batch_1_ms"], 1) if latency["batch_1_ms"] else math.inf,
        batch_32_texts_per_s=latency["batch_32_texts_per_s"],
        batch_1_ms=latency["batch_1_ms"],
        size_mb=round(weights_bytes(classifier, folder) / 1e6, 2),
        parameters=int(sum(p.numel() for p in classifier.model.parameters())),
    )


def weights_bytes(classifier: Classifier, folder: Path) -> int:
    """The weight files of a local plain folder; for a LoRA folder (its base lives elsewhere) or a Hub id, what the
    merged model in memory would take saved."""
    if folder.is_dir() and not (folder / ADAPTER_CONFIG_FILE).is_file():
        return sum(path.stat().st_size for path in folder.rglob("*") if path.suffix in WEIGHT_SUFFIXES)
    return sum(t.numel() * t.element_size() for t in classifier.model.state_dict().values())


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}


def _metric(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def summary_table(report: DistillReport) -> str:
    """Teacher and student, one row each: the primary metric per split, agreement, speed, size, parameters."""
    primary = report.primary_metric
    headers = ["model", *(f"{primary} ({name})" for name in report.splits), "agrees with teacher"]
    headers += ["texts/s (batch 1)", "texts/s (batch 32)", "MB on disk", "parameters"]
    rows = []
    for role in ("teacher", "student"):
        cost = report.cost[role]
        first = next(iter(report.splits.values()), None)
        rows.append(
            [
                f"{role} ({report.student})" if role == "student" else role,
                *(_metric(split.__dict__[role].get(primary)) for split in report.splits.values()),
                "-" if role == "teacher" or first is None else f"{first.agreement:.2%}",
                f"{cost.batch_1_texts_per_s:,.1f}",
                f"{cost.batch_32_texts_per_s:,.1f}",
                f"{cost.size_mb:,.1f}",
                f"{cost.parameters:,}",
            ]
        )
    return markdown_table(headers, rows)
