"""`audit`: the training rows whose label is likely wrong, by confident learning (cleanlab) over out-of-sample
class probabilities.

Each row's probabilities come from a model that never saw the row: K stratified folds, each scored by a model
fitted on the other K-1. `probe` (the default) fits a logistic regression on the frozen encoder's vectors (the
texts are embedded once; seconds for thousands of rows); `finetune` trains the package's own run on each fold's
rest (the strategy and options after `--`), K times the cost of one training. cleanlab's `find_label_issues`
(Northcutt et al. 2021) then estimates how often each given class is confused with each other one and flags the
rows that account for it, ranked by how little the model believes the given label (self-confidence).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.columns import ROW_COLUMN, column_values
from nlp_transfer.data.prepare import PreparedData, read_and_encode
from nlp_transfer.errors import UserInputError
from nlp_transfer.labels.embeddings import Encoder, library_bars
from nlp_transfer.labels.output import write_table
from nlp_transfer.modeling.head_init import PROBE_C
from nlp_transfer.tasks import SINGLE_LABEL

logger = logging.getLogger(__name__)

METHODS = ("probe", "finetune")
FILTERS = ("low_self_confidence", "low_normalized_margin", "prune_by_noise_rate", "both", "confident_learning")
"""cleanlab's `filter_by` choices. The default flags as many rows as cleanlab estimates are mislabelled, the ones
the model believes least: on 2,000 AG News rows with 10% of labels flipped it was the most precise at a recall
above 0.7 (BENCHMARKS.md, "Finding wrong labels"); cleanlab's own default, prune_by_noise_rate, flags more."""
DEFAULT_FOLDS = 5
INSTALL_HINT = "pip install 'nlp-transfer[labels]'  (or: pip install cleanlab)"


@dataclass
class AuditOptions:
    """How `audit` gets its out-of-sample probabilities: see `nlp-transfer audit --help`."""

    method: str = "probe"
    folds: int = DEFAULT_FOLDS
    filter_by: str = FILTERS[0]
    encoder: str | None = None
    batch_size: int = 32
    seed: int = 0
    progress: bool = True
    train_args: list[str] = field(default_factory=list)
    work_dir: str | None = None

    def check(self) -> None:
        if self.method not in METHODS:
            raise UserInputError(f"--method {self.method!r} is not one of: {', '.join(METHODS)}.")
        if self.filter_by not in FILTERS:
            raise UserInputError(f"--filter-by {self.filter_by!r} is not one of: {', '.join(FILTERS)}.")
        if self.folds < 2:
            raise UserInputError(
                f"--folds must be at least 2 (each row is scored by a model of the others), not {self.folds}."
            )
        if self.train_args and self.method != "finetune":
            raise UserInputError(
                f"Training options after '--' ({' '.join(self.train_args)}) are for --method finetune; the probe "
                "takes none."
            )


@dataclass
class Audit:
    """The suspect rows (a table, most suspect first) and what the audit saw."""

    table: pd.DataFrame
    rows: int
    method: str
    folds: int
    out_of_sample_accuracy: float
    probabilities: np.ndarray
    labels: np.ndarray

    def summary(self) -> str:
        share = len(self.table) / self.rows if self.rows else 0.0
        return (
            f"{len(self.table)} of {self.rows} rows ({share:.1%}) look mislabelled ({self.method}, {self.folds} folds; "
            f"out-of-sample accuracy against the given labels {self.out_of_sample_accuracy:.3f})"
        )


def audit(data_args: DataArguments, options: AuditOptions) -> Audit:
    """Out-of-sample probabilities for every row of `data_args.train_file`, then cleanlab's label issues."""
    options.check()
    find_label_issues = _cleanlab()
    with library_bars(options.progress):
        return _audit(data_args, options, find_label_issues)


def _audit(data_args: DataArguments, options: AuditOptions, find_label_issues: Any) -> Audit:
    data = read_and_encode(data_args)
    if data.schema.task != SINGLE_LABEL:
        raise UserInputError(
            f"audit looks for wrong class labels; {data.sources['train']} holds a {data.schema.task} task. "
            "Multi-label and regression data are not audited yet."
        )
    train = data.splits["train"]
    labels = np.asarray(column_values(train, "labels"), dtype=np.int64)
    folds = _fold_count(labels, options.folds, data)
    texts, pairs = texts_of(data)
    if options.method == "probe":
        probabilities = probe_probabilities(texts, pairs, labels, data.schema.num_labels, folds, options)
    else:
        from nlp_transfer.labels.fold_training import finetune_probabilities

        probabilities = finetune_probabilities(data, texts, pairs, labels, folds, options)
    issues = find_label_issues(
        labels, probabilities, filter_by=options.filter_by, return_indices_ranked_by="self_confidence"
    )
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    table = issue_table(data, texts, pairs, labels, probabilities, np.asarray(issues, dtype=np.int64))
    return Audit(table, len(labels), options.method, folds, accuracy, probabilities, labels)


def _cleanlab() -> Any:
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        raise UserInputError(
            f"audit uses cleanlab's confident learning, which is not installed: {INSTALL_HINT}"
        ) from None
    return find_label_issues


def _fold_count(labels: np.ndarray, asked: int, data: PreparedData) -> int:
    """`asked` folds, fewer where the smallest class has fewer rows (each fold must see every class)."""
    counts = np.bincount(labels, minlength=data.schema.num_labels)
    smallest = int(counts.min())
    if smallest < 2:
        names = [data.schema.id2label[i] for i in np.flatnonzero(counts < 2)]
        raise UserInputError(
            f"Classes {', '.join(map(repr, names))} of {data.sources['train']} have fewer than 2 rows: a row can only "
            "be judged by a model that saw other rows of its class. Label more rows of them, or leave them out."
        )
    if smallest < asked:
        logger.warning("The smallest class has %d rows: %d folds instead of %d.", smallest, smallest, asked)
    return min(asked, smallest)


def texts_of(data: PreparedData) -> tuple[list[str], list[str] | None]:
    """The training split's texts (and second texts), read once for the probe, the folds and the table."""
    train = data.splits["train"]
    texts = [str(t) for t in column_values(train, data.text_column)]
    pairs = [str(t) for t in column_values(train, data.text_pair_column)] if data.text_pair_column else None
    return texts, pairs


def probe_probabilities(
    texts: list[str], pairs: list[str] | None, labels: np.ndarray, num_labels: int, folds: int, options: AuditOptions
) -> np.ndarray:
    """Each row's class probabilities from a logistic regression fitted on the other folds' frozen vectors."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from nlp_transfer.modeling.checkpoints import bundled_model_path

    vectors = Encoder(options.encoder or str(bundled_model_path())).embed(
        texts, pairs, batch_size=options.batch_size, progress=options.progress
    )
    probabilities = np.zeros((len(labels), num_labels))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=options.seed)
    for fitted_on, held_out in splitter.split(vectors, labels):
        probe = LogisticRegression(C=PROBE_C, max_iter=2000)  # the probe of training's head initialisation
        probe.fit(vectors[fitted_on], labels[fitted_on])
        probabilities[np.ix_(held_out, probe.classes_)] = probe.predict_proba(vectors[held_out])
    return probabilities


def issue_table(
    data: PreparedData,
    texts: list[str],
    pairs: list[str] | None,
    labels: np.ndarray,
    probabilities: np.ndarray,
    issues: np.ndarray,
) -> pd.DataFrame:
    """One row per suspect, most suspect first: its row number, given and suggested labels, and their probabilities."""
    names = data.schema.id2label
    rows = column_values(data.splits["train"], ROW_COLUMN)
    suggested = probabilities.argmax(axis=1)
    table = {
        "rank": list(range(1, len(issues) + 1)),
        "row": [int(rows[i]) for i in issues],
        "given_label": [names[int(labels[i])] for i in issues],
        "suggested_label": [names[int(suggested[i])] for i in issues],
        "given_label_probability": [round(float(probabilities[i, labels[i]]), 4) for i in issues],
        "suggested_label_probability": [round(float(probabilities[i, suggested[i]]), 4) for i in issues],
        "text": [texts[i] for i in issues],
    }
    if pairs is not None:
        table["text_pair"] = [pairs[i] for i in issues]
    return pd.DataFrame(table)


def write_audit(result: Audit, output: str | Path, inputs: list[str | None]) -> Path:
    """The suspects as CSV/TSV/JSON Lines (by suffix), written whole; never over an input file."""
    return write_table(result.table, output, inputs)
