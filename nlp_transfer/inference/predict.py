"""Load a trained classifier folder and predict labels and scores for texts.

The folder is what `fine_tune` writes (or any transformers sequence-classification folder). Scores
follow the model's `problem_type` exactly as `transformers.pipeline("text-classification")` does:
softmax for single-label, sigmoid per label for multi-label, the raw value for regression.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as transformers_logging

from nlp_transfer.config.long_text import LongTextSettings
from nlp_transfer.data.long_text import cut_texts, encode_documents
from nlp_transfer.data.tokenize import longest_first, resolve_max_length
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.conformal import (
    check_min_confidence,
    confidence,
    intervals,
    prediction_sets,
    resolve_level,
)
from nlp_transfer.evaluation.documents import DOCUMENT, aggregate_logits
from nlp_transfer.evaluation.metrics.suite import decide, probabilities_from_logits, threshold_vector
from nlp_transfer.inference.onnx_runtime import OnnxSequenceClassifier
from nlp_transfer.modeling.heads import register_heads
from nlp_transfer.modeling.static_classifier import STATIC_MODEL_TYPE, register_static_classifier, static_batch
from nlp_transfer.outputs import ADAPTER_CONFIG_FILE, CONFIG_FILE
from nlp_transfer.settings import PackageSettings
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL, TASK_OF_PROBLEM_TYPE

logger = logging.getLogger(__name__)


def task_of(config: Any) -> str:
    """The task a model config describes (problem_type; one output without it means regression)."""
    if config.problem_type is None and config.num_labels == 1:
        return REGRESSION
    return TASK_OF_PROBLEM_TYPE.get(config.problem_type or "", SINGLE_LABEL)


@dataclass
class Classifier:
    """A loaded classifier: `predict(texts)` gives one dict per text.

    `thresholds` (label name -> probability) are the decision thresholds tuned at training time: one per
    label for multi-label (0.5 where absent), the positive class's for binary (argmax without one).
    """

    model: Any
    tokenizer: Any
    task: str
    max_length: int
    thresholds: dict[str, float] = field(default_factory=dict)
    long_text: str = "truncate-head"
    """How a text longer than max_length is read, as in training (nlp_transfer.data.long_text)."""
    chunk_stride: int = 0
    chunk_aggregate: str = "mean"
    """With long_text chunk: the tokens windows share, and how a text's window logits become its logits."""
    conformal: dict[str, Any] | None = None
    """The conformal quantiles saved at training time (nlp_transfer.evaluation.conformal), for `coverage`."""

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any) -> Classifier:
        """Task, truncation and thresholds as the package saved them in the model's config."""
        settings = PackageSettings.read(model)
        # Truncate as training did; folders not written by this package get the training default.
        max_length = int(settings.max_length or resolve_max_length(tokenizer, None))
        return cls(
            model,
            tokenizer,
            task_of(model.config),
            max_length,
            settings.thresholds,
            settings.long_text or "truncate-head",
            settings.chunk_stride or 0,
            settings.chunk_aggregate or "mean",
            settings.conformal,
        )

    @property
    def long_text_settings(self) -> LongTextSettings:
        return LongTextSettings(self.long_text, self.max_length, self.chunk_stride, self.chunk_aggregate)

    @property
    def labels(self) -> list[str]:
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    @torch.inference_mode()
    def logits(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32) -> np.ndarray:
        """Raw model outputs, shape (len(texts), num_labels), computed in batches padded per batch."""
        if isinstance(texts, str):
            raise UserInputError("predict() takes a list of texts; wrap a single text in a list.")
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise UserInputError(f"Got {len(texts)} texts but {len(text_pairs)} text pairs; give one pair per text.")
        device = next(self.model.parameters()).device
        texts = [str(t) for t in texts]
        pairs = [str(t) for t in text_pairs] if text_pairs is not None else None
        logits = np.zeros((len(texts), self.model.config.num_labels), dtype=np.float32)
        if self.long_text == "chunk":
            if pairs is not None:
                raise UserInputError("This model reads long texts in chunks (--long-text chunk): give single texts.")
            windows, documents = self.window_logits(texts, batch_size)
            if len(documents):
                ids, by_document = aggregate_logits(windows, documents, self.chunk_aggregate, self.task)
                logits[ids] = by_document
            return logits
        # Batches of texts of similar length (characters stand in for tokens) pad little; rows return in order.
        order = longest_first([len(t) + (len(pairs[i]) if pairs else 0) for i, t in enumerate(texts)])
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            encoded = self.encode([texts[i] for i in rows], [pairs[i] for i in rows] if pairs else None)
            logits[rows] = self.model(**encoded.to(device)).logits.float().cpu().numpy()
        return logits

    @torch.inference_mode()
    def window_logits(self, texts: Sequence[str], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(logits of every window, index in `texts` of each window's text): the texts read as `long_text_settings`
        says (chunk: several windows a text), before any aggregation. `logits` aggregates them."""
        device = next(self.model.parameters()).device
        texts = [str(t) for t in texts]
        outputs, documents = [np.zeros((0, self.model.config.num_labels), dtype=np.float32)], []
        order = longest_first([len(t) for t in texts])
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            columns = encode_documents(self.tokenizer, [texts[i] for i in rows], self.long_text_settings)
            local = columns.pop(DOCUMENT)
            for first in range(0, len(local), batch_size):  # a long text's windows can fill many batches
                window = {name: values[first : first + batch_size] for name, values in columns.items()}
                encoded = self.tokenizer.pad(window, return_tensors="pt")
                outputs.append(self.model(**encoded.to(device)).logits.float().cpu().numpy())
            documents.extend(int(rows[i]) for i in local)
        return np.concatenate(outputs), np.asarray(documents, dtype=np.int64)

    def encode(self, texts: list[str], pairs: list[str] | None) -> Any:
        """One padded batch, each text cut as training cut it."""
        if self.long_text == "truncate-head" and not pairs:
            texts = cut_texts(self.tokenizer, texts, self.long_text, self.max_length)  # a huge text: its head
            if getattr(self.model.config, "model_type", None) == STATIC_MODEL_TYPE:
                return static_batch(self.tokenizer, texts, self.max_length)
            return self.tokenizer(
                texts, pairs, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
            )
        columns = encode_documents(self.tokenizer, texts, self.long_text_settings, pairs)  # a pair is cut together
        del columns[DOCUMENT]  # one row per text in these modes
        return self.tokenizer.pad(columns, return_tensors="pt")

    def predict(
        self,
        texts: Sequence[str],
        text_pairs: Sequence[str] | None = None,
        batch_size: int = 32,
        coverage: float | None = None,
        min_confidence: float | None = None,
    ) -> list[dict[str, Any]]:
        """single-label: {label, score, scores}; multi-label: {labels, scores}; regression: {label, score}.

        `coverage` (e.g. 0.9) adds the conformal set: `label_set` (labels by score) and `set_size`, which hold the
        true label (multi-label: all true labels) for at least that share of texts; regression gets `interval`.
        `min_confidence` marks a text whose decision is less sure than that (`conformal.confidence`) as
        `abstained`, its label(s) None, instead of guessing.
        """
        level = self._coverage_level(coverage)
        if min_confidence is not None:
            self._check_min_confidence(min_confidence)
        return self._predictions(self.logits(texts, text_pairs, batch_size), level, min_confidence)

    def predictions_from_logits(
        self, logits: np.ndarray, coverage: float | None = None, min_confidence: float | None = None
    ) -> list[dict[str, Any]]:
        """What `predict` returns, from this classifier's logits of the texts computed elsewhere (`logits`, or a
        pass that also reads the hidden states), without a second forward pass."""
        level = self._coverage_level(coverage)
        if min_confidence is not None:
            self._check_min_confidence(min_confidence)
        return self._predictions(np.asarray(logits), level, min_confidence)

    def _predictions(
        self, logits: np.ndarray, level: tuple[str, float | None] | None, min_confidence: float | None
    ) -> list[dict[str, Any]]:
        if self.task == REGRESSION:
            return self._regression(logits, level)
        probabilities = probabilities_from_logits(logits, self.task)
        decisions = decide(probabilities, self.task, threshold_vector(self.labels, self.thresholds, self.task))
        predictions = self._decided(probabilities, decisions)
        if level is not None:
            members = prediction_sets(probabilities, level[1], self.task)
            for prediction, row, member in zip(predictions, probabilities, members):
                chosen = [int(i) for i in np.argsort(-row, kind="stable") if member[i]]
                prediction.update(
                    label_set=[self.labels[i] for i in chosen], set_size=len(chosen), coverage=float(level[0])
                )
        if min_confidence is not None:
            key = "labels" if self.task == MULTI_LABEL else "label"
            for prediction, sure in zip(predictions, confidence(probabilities, decisions, self.task)):
                prediction["confidence"] = float(sure)
                prediction["abstained"] = bool(sure < min_confidence)
                if prediction["abstained"]:
                    prediction[key] = None
        return predictions

    def predict_iter(
        self,
        texts: Iterable[str] | Iterable[tuple[str, str]],
        batch_size: int = 32,
        chunk_rows: int = 4096,
        coverage: float | None = None,
        min_confidence: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """`predict` over an iterable of any length (a generator, a file's lines, a dataset column): `chunk_rows`
        texts at a time, so memory stays flat, each chunk's predictions given back in order as soon as they exist.
        Items are texts, or (text, text_pair) tuples for a sentence-pair model."""
        if isinstance(texts, str):
            raise UserInputError("predict_iter() takes an iterable of texts; wrap a single text in a list.")
        if chunk_rows < 1:
            raise UserInputError(f"chunk_rows must be at least 1, not {chunk_rows}.")
        items = iter(texts)
        while chunk := list(itertools.islice(items, chunk_rows)):
            paired = isinstance(chunk[0], tuple)
            firsts = [item[0] for item in chunk] if paired else chunk
            pairs = [item[1] for item in chunk] if paired else None
            yield from self.predict(firsts, pairs, batch_size, coverage, min_confidence)

    def _decided(self, probabilities: np.ndarray, decisions: np.ndarray) -> list[dict[str, Any]]:
        """The label(s) decided and every label's probability, per text."""
        labels = self.labels
        if self.task == MULTI_LABEL:
            return [
                {
                    "labels": [labels[i] for i in np.flatnonzero(chosen)],
                    "scores": {labels[i]: float(p) for i, p in enumerate(row)},
                }
                for row, chosen in zip(probabilities, decisions)
            ]
        return [
            {
                "label": labels[int(chosen)],
                "score": float(row[int(chosen)]),
                "scores": {labels[i]: float(p) for i, p in enumerate(row)},
            }
            for row, chosen in zip(probabilities, decisions)
        ]

    def _regression(self, logits: np.ndarray, level: tuple[str, float | None] | None) -> list[dict[str, Any]]:
        """The predicted value per text; with a coverage level, its conformal interval ([low, high], None unbounded)."""
        predictions = [{"label": self.labels[0], "score": float(row[0])} for row in logits]
        if level is not None:
            low, high = intervals(logits[:, 0], level[1])
            for prediction, lower, upper in zip(predictions, low, high):
                prediction.update(interval=[_finite(lower), _finite(upper)], coverage=float(level[0]))
        return predictions

    def _coverage_level(self, coverage: float | None) -> tuple[str, float | None] | None:
        """(level, quantile) for `coverage`, refused for a folder without conformal quantiles."""
        if coverage is None:
            return None
        key, quantile = resolve_level(coverage, self.conformal, "This classifier")
        if quantile is None:
            logger.warning(
                "--coverage %s: the %d held-out rows this folder was calibrated on are too few to guarantee it; "
                "every label is in every set (an unbounded interval for regression).",
                key,
                self.conformal.get("rows", 0),
            )
        return key, quantile

    def _check_min_confidence(self, value: float) -> None:
        if self.task == REGRESSION:
            raise UserInputError(
                "--min-confidence needs class probabilities; this is a regression model. Use --coverage for an "
                "interval around each prediction instead."
            )
        check_min_confidence(value)


def _finite(value: float) -> float | None:
    """A bound of an interval for JSON: None where it is unbounded."""
    return float(value) if np.isfinite(value) else None


def load_adapter_model(path: Path) -> Any:
    """Base model built from the folder's classification config (labels, task type), then the adapter on it.

    peft's own AutoPeftModelForSequenceClassification builds the base with 2 labels and LABEL_i names,
    because an adapter folder keeps no labels; this package saves config.json beside the adapter for that.
    """
    from peft import PeftModel

    from nlp_transfer.modeling.checkpoints import resolve_checkpoint

    config = AutoConfig.from_pretrained(path)
    base_id = json.loads((path / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base_id:
        raise UserInputError(f"{path / ADAPTER_CONFIG_FILE} names no base model (base_model_name_or_path).")
    checkpoint = resolve_checkpoint(base_id)
    verbosity = transformers_logging.get_verbosity()
    # The base has no trained head (peft restores it next): the "newly initialized" report is noise here.
    transformers_logging.set_verbosity_error()
    try:
        base = AutoModelForSequenceClassification.from_pretrained(
            checkpoint.source, config=config, **checkpoint.pretrained_kwargs()
        )
    finally:
        transformers_logging.set_verbosity(verbosity)
    return PeftModel.from_pretrained(base, path)


def load_classifier(model_dir: str | Path, device: str | None = None) -> Classifier:
    """Load a trained classifier (plain model or LoRA adapter, with tokenizer and labels) for prediction.

    `model_dir` is a folder written by `nlp-transfer train` or `nlp-transfer export` (run by onnxruntime), or the
    Hub id of one pushed with `nlp-transfer push`.
    """
    register_heads()  # folders with a pooled head need them known to AutoModelForSequenceClassification
    register_static_classifier()  # and the static students of `nlp-transfer distill`
    path = Path(model_dir).expanduser()
    if not path.exists() and _looks_like_repo_id(str(model_dir)):
        path = _download(str(model_dir))
    if not (path / CONFIG_FILE).is_file():
        raise UserInputError(
            f"{path} is not a trained classifier folder (no config.json). Give the --output-dir of a training run."
        )
    onnx_file = PackageSettings.read(AutoConfig.from_pretrained(path)).onnx_file
    if onnx_file:  # a folder of 'nlp-transfer export': its graph runs in onnxruntime, on the CPU
        return Classifier.from_model(
            OnnxSequenceClassifier(path / onnx_file, AutoConfig.from_pretrained(path)).to(device or "cpu"),
            AutoTokenizer.from_pretrained(path),
        )
    if (path / ADAPTER_CONFIG_FILE).is_file():
        model = load_adapter_model(path)
    else:
        check_trained_head(path)
        model = AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    return Classifier.from_model(model, tokenizer)


def check_trained_head(path: Path) -> None:
    """Refuse a folder whose weights hold no classification head (a base checkpoint), before building the model.

    transformers would give such a folder a random head and answer LABEL_0/LABEL_1 near 0.5 for every text. The
    head's parameter names come from a weightless (meta device) model of the folder's config; the file's tensor
    names from the safetensors headers, which also refuses truncated weights. Folders with only .bin weights are
    left to transformers.
    """
    from nlp_transfer.modeling.checkpoints import safetensors_keys

    keys = safetensors_keys(path)
    if keys is None:
        return
    head = _head_parameter_names(path)
    if not head or any(name in keys for name in head):
        return
    raise UserInputError(
        f"--model {path} has no trained classification head: its weights lack {', '.join(head)}, so every prediction "
        "would come from a randomly initialised head (e.g. LABEL_1 at 0.50). It looks like a pretrained base "
        f"checkpoint. Train a classifier on it first with 'nlp-transfer train --model {path} --output-dir DIR' "
        "(plus your data), then predict with --model DIR."
    )


def _head_parameter_names(path: Path) -> list[str]:
    """Names of the parameters outside the encoder of the folder's sequence-classification model; [] if unknown."""
    try:
        config = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            skeleton = AutoModelForSequenceClassification.from_config(config)
    except Exception:  # an architecture this cannot build is left to from_pretrained, with its own error
        return []
    prefix = f"{skeleton.base_model_prefix}."
    return [name for name in skeleton.state_dict() if not name.startswith(prefix)]


def _looks_like_repo_id(name: str) -> bool:
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except ValueError:
        return False
    return name.count("/") == 1 and not name.startswith((".", "~"))


def _download(repo_id: str) -> Path:
    """A pushed classifier from the Hub (cached; offline it must be in the cache already)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, repo_type="model"))
    except Exception as error:  # offline, not found, no access: huggingface_hub raises several types
        raise UserInputError(
            f"{repo_id} is neither a local folder nor a Hub model that could be downloaded "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). Give the output "
            "folder of 'nlp-transfer train', or a Hub id with network access (HF_HUB_OFFLINE unset)."
        ) from None


def predict(
    model_dir: str | Path,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    batch_size: int = 32,
    coverage: float | None = None,
    min_confidence: float | None = None,
) -> list[dict[str, Any]]:
    """One-shot helper: load the classifier in `model_dir` and predict `texts` (see `Classifier.predict`)."""
    return load_classifier(model_dir).predict(texts, text_pairs, batch_size, coverage, min_confidence)
