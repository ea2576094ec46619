"""Splits and subsets: the validation split carved from train, the --max-*-samples subsets (`random_rows`,
`stratified_rows`), and the warnings about texts shared between splits."""

from __future__ import annotations

import logging

import numpy as np
from datasets import Dataset

from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.checks import ROWS_SHOWN, text_keys, warn_conflicting_labels, warn_shared_texts
from nlp_transfer.data.columns import ROW_COLUMN, column_values
from nlp_transfer.data.labels import LabelSchema
from nlp_transfer.errors import UserInputError
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL

logger = logging.getLogger(__name__)


def _warn_duplicates(
    splits: dict[str, Dataset], sources: dict[str, str], text: str, pair: str | None, task: str
) -> None:
    """Counted warnings: evaluation texts that are also training texts (leakage), and training texts given
    different labels (classification only: a regression score may differ between annotations)."""

    def keys(split: Dataset) -> list[str]:
        return text_keys(column_values(split, text), column_values(split, pair) if pair else None)

    train = splits["train"]
    train_keys = keys(train)
    for role, split in splits.items():
        if role != "train":
            warn_shared_texts(train_keys, keys(split), column_values(split, ROW_COLUMN), role, sources[role])
    if task != REGRESSION:
        rows = column_values(train, ROW_COLUMN)
        warn_conflicting_labels(train_keys, column_values(train, "labels"), rows, sources["train"])


def _carve_validation(train: Dataset, schema: LabelSchema, args: DataArguments, seed: int) -> tuple[Dataset, Dataset]:
    """Hold out a validation split from train: stratified by label for single-label data, fixed by seed.

    Every class keeps at least one training row: rows of a class that the split put only in validation go
    back to train (a class seen only in validation can never be predicted).
    """
    kept, held = _carve_indices(train, schema, args, seed)
    if schema.task != REGRESSION:
        kept, held = _keep_classes_in_train(kept, held, np.asarray(column_values(train, "labels")), schema)
    if len(held) == 0:
        raise UserInputError(
            f"Cannot hold out a validation split from {len(train)} training rows: every class has too few rows to "
            "appear in both splits. Give a --validation-file or more training data."
        )
    return train.select(sorted(kept)), train.select(sorted(held))


def _carve_indices(
    train: Dataset, schema: LabelSchema, args: DataArguments, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    fraction = args.validation_fraction
    indices = np.arange(len(train))
    stratify = np.asarray(column_values(train, "labels")) if schema.task == SINGLE_LABEL else None
    try:
        kept, held = train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError as error:
        if stratify is None:
            raise UserInputError(
                f"Cannot hold out {fraction:.0%} of {len(train)} training rows for validation: {error}. "
                "Give a --validation-file or more training data."
            ) from None
        logger.warning("Validation split not stratified (%s); splitting at random instead.", error)
        return _carve_indices(train, LabelSchema(REGRESSION), args, seed)
    return np.asarray(kept), np.asarray(held)


def _keep_classes_in_train(
    kept: np.ndarray, held: np.ndarray, labels: np.ndarray, schema: LabelSchema
) -> tuple[np.ndarray, np.ndarray]:
    """Move held-out rows of classes absent from the kept rows back to train (ids, or multi-hot rows)."""
    if schema.task == MULTI_LABEL:
        present = labels[kept].sum(axis=0) > 0 if len(kept) else np.zeros(labels.shape[1], dtype=bool)
        missing = np.flatnonzero(~present & (labels[held].sum(axis=0) > 0))
        back = labels[held][:, missing].any(axis=1)
    else:
        missing = np.setdiff1d(labels[held], labels[kept])
        back = np.isin(labels[held], missing)
    if not back.any():
        return kept, held
    names = [schema.names[int(i)] for i in missing]
    logger.warning(
        "Kept %d %s in train that the validation split had taken: their labels (%s) have too few rows to appear "
        "in both splits, so validation has no example of them.",
        int(back.sum()),
        "row" if back.sum() == 1 else "rows",
        ", ".join(names[:ROWS_SHOWN]) + (" ..." if len(names) > ROWS_SHOWN else ""),
    )
    return np.concatenate([kept, held[back]]), held[~back]


def _subset(split: Dataset, size: int, seed: int) -> Dataset:
    """A fixed random subset (same seed, same rows), kept in file order."""
    return split if size >= len(split) else split.select(random_rows(len(split), size, seed))


def random_rows(count: int, size: int, seed: int) -> list[int]:
    """`size` of `count` row numbers drawn with `seed`, in file order (what --max-train-samples keeps)."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(count, size=size, replace=False).tolist())


def _stratified_subset(split: Dataset, size: int, seed: int) -> Dataset:
    """A fixed random subset in which each label keeps its share (`stratified_rows`), kept in file order."""
    if size >= len(split):
        return split
    return split.select(stratified_rows(np.asarray(column_values(split, "labels")), size, seed))


def stratified_rows(labels: np.ndarray, size: int, seed: int) -> list[int]:
    """`size` row numbers in which each label keeps its share (largest remainders, at least one row per label
    when `size` allows), drawn with `seed`, in file order (--train-sample stratified); a grid of training-set
    sizes needs every label in each."""
    classes, counts = np.unique(labels, return_counts=True)
    if size < len(classes):
        raise UserInputError(
            f"--max-train-samples {size} is fewer than the {len(classes)} labels of the training data; a "
            "stratified draw needs at least one row per label."
        )
    exact = counts / counts.sum() * size
    quota = np.maximum(np.floor(exact).astype(int), 1)
    for index in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if quota.sum() >= size:
            break
        if quota[index] < counts[index]:
            quota[index] += 1
    while quota.sum() > size:  # the minimum of one row per label overshot: take from the largest quota
        quota[np.argmax(quota)] -= 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == label), size=take, replace=False) for label, take in zip(classes, quota)
    ]
    return sorted(np.concatenate(chosen).tolist())
