"""Saved means verified: the output folder is loaded back the way a user loads it and re-scored.

Users of peft keep reporting heads that come back random and labels that come back as LABEL_0. So
after saving, the folder (adapter, and merged model with --merge-lora) is reloaded from disk with its
labels and task type, its predictions on validation rows are compared with the model in memory, and any
mismatch stops the run before the folder is published. The check is for bugs in saving, not a score: it reads
the first RELOAD_CHECK_ROWS validation rows, since every pass over a large validation set costs as much as an
evaluation (three passes made a third of a small grid cell's time on SST-2).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nlp_transfer.data.columns import column_values
from nlp_transfer.data.prepare import PreparedData
from nlp_transfer.evaluation.metrics import MetricSuite, available_metrics
from nlp_transfer.evaluation.metrics.suite import DECISIONS
from nlp_transfer.inference.predict import Classifier, load_classifier
from nlp_transfer.outputs import MERGED_FOLDER

LOGIT_TOLERANCE = 1e-4
METRIC_TOLERANCE = 1e-6
RELOAD_CHECK_ROWS = 256


class ReloadCheckError(RuntimeError):
    """The saved folder does not reproduce the trained model: a bug, never the user's input."""


def _validation_inputs(data: PreparedData) -> tuple[list[str], list[str] | None, np.ndarray]:
    split = data.splits["validation"]
    split = split.select(range(min(len(split), RELOAD_CHECK_ROWS)))
    texts = [str(t) for t in column_values(split, data.text_column)]
    pairs = [str(t) for t in column_values(split, data.text_pair_column)] if data.text_pair_column else None
    return texts, pairs, np.asarray(column_values(split, "labels"))


def _score(classifier: Classifier, texts: list[str], pairs: list[str] | None, labels: np.ndarray):
    """Logits and the decision metrics with the classifier's own (saved) thresholds."""
    logits = classifier.logits(texts, pairs)
    names = available_metrics(classifier.task, len(classifier.labels), uses=DECISIONS)
    suite = MetricSuite(classifier.task, classifier.labels, names, thresholds=classifier.thresholds)
    return logits, suite.compute(logits, labels)


def _same_metrics(first: dict[str, float], second: dict[str, float]) -> bool:
    return first.keys() == second.keys() and all(
        math.isclose(first[k], second[k], rel_tol=METRIC_TOLERANCE, abs_tol=METRIC_TOLERANCE) for k in first
    )


@contextmanager
def _full_fp32_matmuls() -> Iterator[None]:
    """TF32 off for the check: a merged LoRA model multiplies in another order than model + adapter, and TF32's
    ~1e-3 relative error would then exceed the logit tolerance without anything being wrong with the folder."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def verify_reload(
    model: nn.Module, folder: Path, data: PreparedData, tokenizer: Any, max_length: int
) -> dict[str, Any]:
    """Reload `folder` (and its merged copy) as a user would; its metrics on validation rows must equal the model's."""
    with _full_fp32_matmuls():
        return _verify_reload(model, folder, data, tokenizer, max_length)


def _verify_reload(
    model: nn.Module, folder: Path, data: PreparedData, tokenizer: Any, max_length: int
) -> dict[str, Any]:
    texts, pairs, labels = _validation_inputs(data)
    model.eval()
    in_memory = Classifier.from_model(model, tokenizer)
    in_memory.max_length = max_length
    reference_logits, reference_metrics = _score(in_memory, texts, pairs, labels)
    record: dict[str, Any] = {"rows": len(labels), "in_memory": reference_metrics, "folders": {}}
    folders = [folder] + ([folder / MERGED_FOLDER] if (folder / MERGED_FOLDER).is_dir() else [])
    for path in folders:
        reloaded = load_classifier(path, device=str(next(model.parameters()).device))
        if reloaded.labels != (data.schema.names or reloaded.labels):
            raise ReloadCheckError(f"{path} reloads with labels {reloaded.labels}, expected {data.schema.names}.")
        if reloaded.thresholds != in_memory.thresholds:
            raise ReloadCheckError(
                f"{path} reloads with decision thresholds {reloaded.thresholds}, expected {in_memory.thresholds}."
            )
        logits, metrics = _score(reloaded, texts, pairs, labels)
        difference = float(np.max(np.abs(logits - reference_logits))) if logits.size else 0.0
        key = "." if path == folder else path.name
        record["folders"][key] = {"metrics": metrics, "max_abs_logit_difference": difference}
        if not _same_metrics(metrics, reference_metrics) or difference > LOGIT_TOLERANCE:
            raise ReloadCheckError(
                f"The saved folder {path} does not reproduce the trained model: validation metrics {metrics} "
                f"after reloading vs {reference_metrics} in memory (largest logit difference {difference:.2e}). "
                "Nothing was published. This is a bug: please report it with the run's options."
            )
        del reloaded
    record["passed"] = True
    return record
