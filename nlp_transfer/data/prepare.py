"""Load, validate, infer the task, encode labels and split: `load_data` and the `PreparedData` it returns.

Data code never touches the model. It turns the user's files (or a Hub dataset, or the bundled demo
data) into a `PreparedData`: a DatasetDict with a `labels` column, the label schema that becomes the
model config's `id2label`/`label2id`/`problem_type`, and the names of the text columns. Every problem
with the input is raised as one `UserInputError` that names the file, column, rows or value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from datasets import Dataset, DatasetDict

from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.checks import check_encoding_name, refuse_nested_labels, row_list
from nlp_transfer.data.columns import ROW_COLUMN, _resolve_columns, column_values
from nlp_transfer.data.label_issues import drop_listed_rows
from nlp_transfer.data.labels import (
    LabelSchema,
    _class_label_names,
    _encode_labels,
    _infer_task,
    _is_missing,
    _is_missing_label,
)
from nlp_transfer.data.reading import _read_splits, eval_file_split
from nlp_transfer.data.splits import _carve_validation, _stratified_subset, _subset, _warn_duplicates
from nlp_transfer.errors import UserInputError
from nlp_transfer.tasks import MULTI_LABEL, SINGLE_LABEL

logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Validated splits with encoded `labels`, ready to tokenize."""

    splits: DatasetDict
    schema: LabelSchema
    text_column: str
    text_pair_column: str | None
    sources: dict[str, str]
    """Split name -> where it came from (file path, Hub split, or 'carved from train')."""
    dropped_rows: dict[str, int] = field(default_factory=dict)


def read_and_encode(args: DataArguments) -> PreparedData:
    """The splits `args` names as read, validated and label-encoded: no validation carved, no subsets drawn.

    The options themselves are checked first (`DataArguments.check`, also part of `RunConfig.validate`). Rows that
    `--drop-label-issues` lists leave the training split here, before anything is inferred from it.
    """
    args.check()
    check_encoding_name(args.encoding)
    raw, sources = _read_splits(args)
    text_column, pair_column, label_column = _resolve_columns(raw, args, sources)
    empty_means_no_label = args.label_separator is not None or args.task == MULTI_LABEL
    raw, dropped = _check_rows(
        raw, sources, (text_column, pair_column, label_column), empty_means_no_label, args.drop_invalid_rows
    )
    if args.drop_label_issues:
        raw["train"], dropped["train (label issues)"] = drop_listed_rows(
            raw["train"], args.drop_label_issues, text_column, sources["train"]
        )
    task = _infer_task(raw["train"], label_column, args, sources["train"])
    schema, splits = _encode_labels(raw, sources, label_column, task, args)
    return PreparedData(DatasetDict(splits), schema, text_column, pair_column, sources, dropped)


def load_data(args: DataArguments, seed: int = 42) -> PreparedData:
    """Read, validate and label-encode the splits that `args` names (`read_and_encode`); carve validation when
    absent, draw the --max-*-samples subsets, and warn about texts shared between splits."""
    data = read_and_encode(args)
    splits, sources, schema = dict(data.splits), data.sources, data.schema
    text_column, pair_column = data.text_column, data.text_pair_column
    split_seed = seed if args.split_seed is None else args.split_seed
    if "validation" not in splits:
        splits["train"], splits["validation"] = _carve_validation(splits["train"], schema, args, split_seed)
        sources["validation"] = f"{args.validation_fraction:.0%} of train ({sources['train']}), seed {split_seed}"
    if args.max_train_samples is not None:
        stratified = args.train_sample == "stratified" and schema.task == SINGLE_LABEL
        if args.train_sample == "stratified" and not stratified:
            logger.info("--train-sample stratified applies to single-label tasks; drawing at random (%s).", schema.task)
        draw = _stratified_subset if stratified else _subset
        splits["train"] = draw(splits["train"], args.max_train_samples, seed)
    if args.max_eval_samples is not None:
        for name in ("validation", "test", *map(eval_file_split, args.eval_files())):
            if name in splits:
                splits[name] = _subset(splits[name], args.max_eval_samples, split_seed)

    _warn_duplicates(splits, sources, text_column, pair_column, schema.task)
    keep = [c for c in (text_column, pair_column, "labels", ROW_COLUMN) if c]
    for name, split in splits.items():
        splits[name] = split.select_columns(keep)
    return PreparedData(DatasetDict(splits), schema, text_column, pair_column, sources, data.dropped_rows)


def _check_rows(
    splits: dict[str, Dataset],
    sources: dict[str, str],
    columns: tuple[str, str | None, str],
    empty_means_no_label: bool,
    drop: bool,
) -> tuple[dict[str, Dataset], dict[str, int]]:
    """Refuse (or with --drop-invalid-rows, drop) rows with an empty text or a missing label."""
    text, pair, label = columns
    dropped: dict[str, int] = {}
    for role, split in list(splits.items()):
        if len(split) == 0:
            raise UserInputError(f"The {role} data ({sources[role]}) has no rows. Give a file with examples.")
        texts = column_values(split, text)
        pairs = column_values(split, pair) if pair else [None] * len(split)
        labels = column_values(split, label)
        rows = column_values(split, ROW_COLUMN)
        refuse_nested_labels(labels, rows, sources[role], label)
        bad_text = [r for r, t in zip(rows, texts) if _is_missing(t)]
        bad_pair = [r for r, t in zip(rows, pairs) if pair and _is_missing(t)]
        minus_one_is_missing = _class_label_names(split.features[label]) is not None
        bad_label = [
            r for r, v in zip(rows, labels) if _is_missing_label(v, empty_means_no_label, minus_one_is_missing)
        ]
        bad = sorted(set(bad_text) | set(bad_pair) | set(bad_label))
        if not bad:
            continue
        if not drop:
            parts = []
            if bad_text:
                parts.append(f"{len(bad_text)} with an empty '{text}' (rows {row_list(bad_text)})")
            if bad_pair:
                parts.append(f"{len(bad_pair)} with an empty '{pair}' (rows {row_list(bad_pair)})")
            if bad_label:
                parts.append(f"{len(bad_label)} with a missing '{label}' (rows {row_list(bad_label)})")
            raise UserInputError(
                f"The {role} data ({sources[role]}) has {len(bad)} invalid rows: {'; '.join(parts)}. "
                "Rows are numbered from 1 after the header. Fix them, or pass --drop-invalid-rows to "
                "leave them out."
            )
        bad_set = set(bad)
        keep = [i for i, r in enumerate(rows) if r not in bad_set]
        splits[role] = split.select(keep)
        dropped[role] = len(bad)
        logger.warning("Dropped %d invalid rows from the %s data (%s).", len(bad), role, sources[role])
        if len(splits[role]) == 0:
            raise UserInputError(f"The {role} data ({sources[role]}) has no valid rows left after dropping.")
    return splits, dropped
