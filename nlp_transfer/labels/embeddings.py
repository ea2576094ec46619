"""Vectors for texts: what `suggest` clusters and `audit`'s probe reads, from a checkpoint or a trained folder.

A text's vector is its encoder's last hidden states mean-pooled (padding masked) and L2-normalised, so that a dot
product is a cosine. A sentence-transformers checkpoint (the bundled MiniLM) is read with the pooling it was
trained with (its `modules.json`), as training reads it. A trained classifier gives its logits in the same pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlp_transfer.data.tokenize import longest_first, resolve_max_length
from nlp_transfer.errors import UserInputError
from nlp_transfer.inference.predict import Classifier
from nlp_transfer.modeling.checkpoints import (
    check_weights_files,
    load_tokenizer,
    quiet_load_report,
    resolve_checkpoint,
)
from nlp_transfer.modeling.heads import pool, sentence_transformers_pooling

logger = logging.getLogger(__name__)

BATCH_SIZE = 32


@contextmanager
def library_bars(shown: bool) -> Iterator[None]:
    """transformers' and datasets' own progress bars ("Loading weights", "Casting the dataset") off unless `shown`."""
    import datasets
    from transformers.utils import logging as transformers_logging

    before = transformers_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    if not shown:
        transformers_logging.disable_progress_bar()
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if before[0]:
            transformers_logging.enable_progress_bar()
        if before[1]:
            datasets.enable_progress_bars()


@dataclass
class TextVectors:
    """One row per text: its unit-length embedding and, from a trained classifier, its logits."""

    embeddings: np.ndarray
    logits: np.ndarray | None = None


class Encoder:
    """A checkpoint's encoder (no head) that turns texts into pooled, normalised vectors."""

    def __init__(self, model: str, max_length: int | None = None, device: str | None = None) -> None:
        from transformers import AutoModel

        checkpoint = resolve_checkpoint(model)
        if checkpoint.is_local:
            check_weights_files(Path(checkpoint.source))
        self.tokenizer = load_tokenizer(checkpoint)
        with quiet_load_report():
            try:
                self.model = AutoModel.from_pretrained(checkpoint.source, **checkpoint.pretrained_kwargs())
            except (OSError, ValueError) as error:
                raise UserInputError(f"Could not load the encoder of {model}: {error}") from None
        self.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
        found = sentence_transformers_pooling(checkpoint)
        self.pooling = found[0] if found else "mean"
        self.max_length = resolve_max_length(self.tokenizer, max_length)
        logger.info("Embedding with %s: %s pooling, up to %d tokens", model, self.pooling, self.max_length)

    @torch.inference_mode()
    def embed(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, batch_size: int = BATCH_SIZE, progress=False
    ) -> np.ndarray:
        """(len(texts), hidden) unit vectors, in the order of `texts`."""
        device = next(self.model.parameters()).device
        vectors = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for rows in _batches(texts, pairs, batch_size, progress, "embedding"):
            encoded = self.tokenizer(
                [texts[i] for i in rows],
                [pairs[i] for i in rows] if pairs is not None else None,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            hidden = self.model(**encoded).last_hidden_state
            vectors[rows] = _unit(pool(hidden, encoded.get("attention_mask"), self.pooling))
        return vectors


@torch.inference_mode()
def classifier_vectors(
    classifier: Classifier, texts: Sequence[str], batch_size: int = BATCH_SIZE, progress: bool = False
) -> TextVectors:
    """A trained classifier's logits and its encoder's mean-pooled last hidden states, in one pass over `texts`.

    A folder that reads long texts in chunks gives its per-text logits (`Classifier.logits`) and the vector of
    each text's first window.
    """
    model = classifier.model
    if not hasattr(model, "parameters"):
        raise UserInputError(
            "This folder is an exported ONNX model, which gives no hidden states to compare texts by: give the "
            "PyTorch folder it was exported from as --model."
        )
    device = next(model.parameters()).device
    texts = [str(t) for t in texts]
    vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    logits = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    for rows in _batches(texts, None, batch_size, progress, "scoring the pool"):
        encoded = _encode_truncated(classifier, [texts[i] for i in rows]).to(device)
        outputs = model(**encoded, output_hidden_states=True)
        vectors[rows] = _unit(pool(outputs.hidden_states[-1], encoded.get("attention_mask"), "mean"))
        logits[rows] = outputs.logits.float().cpu().numpy()
    if classifier.long_text == "chunk":
        logits = classifier.logits(texts, batch_size=batch_size)
    return TextVectors(vectors, logits)


def _encode_truncated(classifier: Classifier, texts: list[str]) -> Any:
    if classifier.long_text == "chunk":
        return classifier.tokenizer(
            texts, truncation=True, max_length=classifier.max_length, padding=True, return_tensors="pt"
        )
    return classifier.encode(texts, None)


def _batches(texts: Sequence[str], pairs: Sequence[str] | None, batch_size: int, progress: bool, what: str) -> Any:
    """Row indices of each batch, longest texts first (batches of similar length pad little), with a progress bar."""
    from tqdm.auto import tqdm

    lengths = [len(t) + (len(pairs[i]) if pairs is not None else 0) for i, t in enumerate(texts)]
    order = longest_first(lengths)
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc=what, unit="batch", disable=not progress or len(starts) < 2):
        yield order[start : start + batch_size]


def _unit(vectors: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(vectors.float(), dim=-1).cpu().numpy()
