"""Chunked documents: the window logits of a document turned back into one document's logits.

`--long-text chunk` cuts each document into windows, one row each (`data.long_text`); a model classifies
every window, and `aggregate_logits` turns the window logits into one prediction per document.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nlp_transfer.tasks import MULTI_LABEL, SINGLE_LABEL, TASKS

AGGREGATIONS = ("mean", "max", "first", "attention")
DOCUMENT = "document"
"""The column of a chunk row that names its document (the text's row in its split)."""


def _groups(documents: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(document ids in ascending order, each row's position among them, each document's first row).

    Ascending, not the rows' order: windows computed longest first still come back in the documents' own order."""
    ids, first, inverse = np.unique(np.asarray(documents), return_index=True, return_inverse=True)
    return ids, inverse.reshape(-1), first


def _confidence(logits: np.ndarray, task: str) -> np.ndarray:
    """Each row's log-confidence: log top-class probability; mean log max(p, 1 - p) over labels; or 0."""
    if task == SINGLE_LABEL:
        top = logits.max(axis=1)
        return -np.log(np.exp(logits - top[:, None]).sum(axis=1))  # log-softmax of the top class
    if task == MULTI_LABEL:
        return -np.logaddexp(0.0, -np.abs(logits)).mean(axis=1)  # log sigmoid(|z|) = log max(p, 1 - p)
    return np.zeros(len(logits))  # regression: no confidence to read, equal weights


def aggregate_logits(logits: np.ndarray, documents: np.ndarray, how: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Chunk logits (rows x outputs) -> (document ids in ascending order, document logits).

    Rows of a document need not be contiguous. `mean` and `max` are element-wise over a document's rows;
    `first` takes its lowest-index row. `attention` is attention over chunks by their own confidence, with no
    new weights: a softmax, over a document's chunks, of each chunk's log-confidence (`_confidence`) weighs
    their logits. For single-label the weights are the chunks' top-class probabilities normalised; for
    multi-label the geometric means over labels of max(p, 1 - p) normalised; for regression equal (the mean).
    """
    logits = np.asarray(logits, dtype=float)
    if logits.ndim != 2 or len(logits) != len(documents):
        raise ValueError(f"logits must be rows x outputs, one row per document id; got {logits.shape}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {TASKS}")
    ids, group, first = _groups(documents)
    if how == "first":
        return ids, logits[first]
    if how == "max":
        out = np.full((len(ids), logits.shape[1]), -np.inf)
        np.maximum.at(out, group, logits)
        return ids, out
    if how == "mean":
        weights = np.ones(len(logits))
    elif how == "attention":
        score = _confidence(logits, task)
        top = np.full(len(ids), -np.inf)
        np.maximum.at(top, group, score)
        weights = np.exp(score - top[group])  # softmax within each document, stable
    else:
        raise ValueError(f"unknown aggregation {how!r}; use one of {AGGREGATIONS}")
    total = np.zeros(len(ids))
    np.add.at(total, group, weights)
    out = np.zeros((len(ids), logits.shape[1]))
    np.add.at(out, group, (weights / total[group])[:, None] * logits)
    return ids, out


def aggregate_labels(labels: np.ndarray, documents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(document ids in ascending order, each document's label). Every chunk of a document carries the
    document's label, so rows that disagree are a bug upstream and raise ValueError."""
    labels = np.asarray(labels)
    ids, group, first = _groups(documents)
    per_row = labels[first][group]
    same = per_row == labels
    if np.issubdtype(labels.dtype, np.floating):
        same |= np.isnan(per_row) & np.isnan(labels)
    if not same.all():
        rows = np.flatnonzero(~same.reshape(len(labels), -1).all(axis=1))
        raise ValueError(f"rows of document {ids[group[rows[0]]]} carry different labels (row {rows[0]})")
    return ids, labels[first]


def window_labels(label_ids: Any) -> tuple[Any, Any]:
    """Trainer's `label_ids` of a split as (labels, document ids): a chunked split's are the pair (its windows'
    labels, their documents); any other split's are the labels themselves, with None for the documents."""
    if isinstance(label_ids, (tuple, list)):
        labels, documents = label_ids
        return labels, documents
    return label_ids, None


def per_document(logits: np.ndarray, label_ids: Any, how: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Trainer's outputs on a split -> (logits, labels) per document.

    A chunked split is evaluated with label_names (labels, document), so its `label_ids` is the pair (chunk
    labels, document ids): the chunks are aggregated `how` says, one row per document in ascending id order.
    Any other split's `label_ids` is the labels themselves, returned with the logits as they are.
    """
    labels, documents = window_labels(label_ids)
    if documents is None:
        return logits, labels
    documents = np.asarray(documents).reshape(-1)
    ids, document_logits = aggregate_logits(logits, documents, how, task)
    label_ids_in_order, document_labels = aggregate_labels(labels, documents)
    if not np.array_equal(ids, label_ids_in_order):  # both sort by id; a guard for the next reader
        raise ValueError("document order of logits and labels differs")
    return document_logits.astype(np.asarray(logits).dtype, copy=False), document_labels
