"""`suggest`: the k texts of a pool to label next, best first, each with its score and the reason it was chosen.

The loop a user runs: suggest -> label those texts -> train on every label so far -> suggest again with the new
model (`--model`) and the labelled file (`--labelled`), so that nothing is suggested twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nlp_transfer.errors import UserInputError
from nlp_transfer.labels.embeddings import Encoder, TextVectors, classifier_vectors, library_bars
from nlp_transfer.labels.output import write_table
from nlp_transfer.labels.pool import TextFile, eligible_rows, read_text_file
from nlp_transfer.labels.selection import (
    DUPLICATE_COSINE,
    MODEL_STRATEGIES,
    Pick,
    choose,
    margins,
    resolve_strategy,
)

logger = logging.getLogger(__name__)

RESERVED_COLUMNS = ("rank", "row", "strategy", "score", "reason", "predicted", "probability")
"""The columns `suggest` writes before the pool's own (a pool column of the same name is written as pool_NAME)."""


@dataclass
class SuggestOptions:
    """What `suggest` needs besides the pool: see `nlp-transfer suggest --help` for each option."""

    k: int
    strategy: str = "auto"
    model: str | None = None
    encoder: str | None = None
    labelled: str | None = None
    text_column: str | None = None
    labelled_text_column: str | None = None
    encoding: str = "utf-8"
    batch_size: int = 32
    seed: int = 0
    duplicate_cosine: float = DUPLICATE_COSINE
    progress: bool = True

    def check(self) -> None:
        if self.k <= 0:
            raise UserInputError(f"--k must be a positive number of texts, not {self.k}.")
        if not 0 < self.duplicate_cosine <= 1:
            raise UserInputError(f"--duplicate-cosine must be in (0, 1], not {self.duplicate_cosine}.")
        if self.batch_size <= 0:
            raise UserInputError(f"--batch-size must be positive, not {self.batch_size}.")
        if self.model and self.encoder:
            raise UserInputError(
                "Give --model (a trained classifier: its uncertainty and its own vectors) or --encoder (a checkpoint "
                "for a cold start), not both."
            )
        resolve_strategy(self.strategy, self.model is not None)


@dataclass
class Suggestions:
    """The chosen rows (a table, best first) and counts of what the pool held."""

    table: pd.DataFrame
    strategy: str
    pool_rows: int
    eligible: int
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        skipped = ", ".join(f"{count} {what}" for what, count in self.counts.items() if count)
        return (
            f"{len(self.table)} texts suggested by {self.strategy} from {self.eligible} eligible of {self.pool_rows} "
            f"pool rows" + (f" (left out: {skipped})" if skipped else "")
        )


def suggest(pool_file: str | Path, options: SuggestOptions) -> Suggestions:
    """Read the pool (and the labelled texts), embed them, and choose `options.k` texts by the strategy."""
    options.check()
    strategy = resolve_strategy(options.strategy, options.model is not None)
    pool = read_text_file(pool_file, options.text_column, options.encoding)
    labelled = None
    if options.labelled:
        labelled = read_text_file(options.labelled, options.labelled_text_column or pool.text_column, options.encoding)
    eligible, already, repeats = eligible_rows(pool, labelled)
    with library_bars(options.progress):
        vectors, labelled_vectors, classifier = _vectors(pool, labelled, options)
    margin = margins(vectors.logits, classifier.task) if strategy in MODEL_STRATEGIES else None
    picks = choose(
        strategy,
        options.k,
        vectors.embeddings,
        eligible,
        labelled_vectors,
        margin,
        options.seed,
        options.duplicate_cosine,
    )
    counts = {"empty texts": pool.empty_rows, "already labelled": already, "repeated texts": repeats}
    if len(picks) < options.k:
        logger.warning(
            "Only %d of the %d texts asked for qualify (pool too small or too repetitive).", len(picks), options.k
        )
    table = _table(pool, picks, strategy, vectors.logits, classifier)
    return Suggestions(table, strategy, len(pool.texts) + pool.empty_rows, len(eligible), counts)


def _vectors(
    pool: TextFile, labelled: TextFile | None, options: SuggestOptions
) -> tuple[TextVectors, np.ndarray | None, Any]:
    """The pool's vectors (and logits, with a model) and the labelled texts' vectors, in one model."""
    if options.model:
        from nlp_transfer.inference.predict import load_classifier

        classifier = load_classifier(options.model)
        vectors = classifier_vectors(classifier, pool.texts, options.batch_size, options.progress)
        known = classifier_vectors(classifier, labelled.texts, options.batch_size).embeddings if labelled else None
        return vectors, known, classifier
    from nlp_transfer.modeling.checkpoints import bundled_model_path

    encoder = Encoder(options.encoder or str(bundled_model_path()))
    vectors = TextVectors(encoder.embed(pool.texts, batch_size=options.batch_size, progress=options.progress))
    known = encoder.embed(labelled.texts, batch_size=options.batch_size) if labelled else None
    return vectors, known, None


def _table(
    pool: TextFile, picks: list[Pick], strategy: str, logits: np.ndarray | None, classifier: Any
) -> pd.DataFrame:
    indices = [pick.index for pick in picks]
    columns: dict[str, Any] = {
        "rank": list(range(1, len(picks) + 1)),
        "row": [pool.rows[i] for i in indices],
        "strategy": [strategy] * len(picks),
        "score": [round(pick.score, 6) for pick in picks],
        "reason": [pick.reason for pick in picks],
    }
    if logits is not None and classifier is not None and classifier.task != "regression":
        predictions = classifier.predictions_from_logits(logits[indices]) if indices else []
        columns["predicted"] = [_decision(p) for p in predictions]
        columns["probability"] = [round(p["score"], 6) if "score" in p else None for p in predictions]
    for name, values in pool.columns.items():
        columns[f"pool_{name}" if name in RESERVED_COLUMNS else name] = [values[i] for i in indices]
    return pd.DataFrame(columns)


def _decision(prediction: dict[str, Any]) -> str:
    """The label a classifier would give (multi-label: its labels joined by '|')."""
    if "labels" in prediction:
        return "|".join(prediction["labels"])
    return str(prediction["label"])


def write_suggestions(suggestions: Suggestions, output: str | Path, inputs: list[str | None]) -> Path:
    """The table as CSV, TSV or JSON Lines (by suffix), written whole; never over one of the input files."""
    return write_table(suggestions.table, output, inputs)
