"""Labels: the `LabelSchema`, missing labels, the task inferred from the training labels, and the labels encoded
as class ids, multi-hot vectors or regression values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, Value
from datasets import Sequence as SequenceFeature

from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.checks import (
    ROWS_SHOWN,
    refuse_joined_labels,
    refuse_mixed_label_kinds,
    refuse_non_finite,
    row_list,
)
from nlp_transfer.data.columns import ROW_COLUMN, column_values
from nlp_transfer.errors import UserInputError
from nlp_transfer.tasks import MULTI_LABEL, PROBLEM_TYPES, REGRESSION, SINGLE_LABEL

DEFAULT_LABEL_SEPARATOR = ";"


@dataclass
class LabelSchema:
    """The task and its label names, in id order; what the model config records."""

    task: str
    names: list[str] = field(default_factory=list)

    @property
    def num_labels(self) -> int:
        return 1 if self.task == REGRESSION else len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return {0: "score"} if self.task == REGRESSION else dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in self.id2label.items()}

    @property
    def problem_type(self) -> str:
        return PROBLEM_TYPES[self.task]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _is_missing_label(value: Any, empty_means_no_label: bool, minus_one_is_missing: bool) -> bool:
    # In Hub datasets with ClassLabel columns -1 marks an unlabelled row (GLUE test splits); in a user's
    # file -1 is an ordinary label (negative sentiment on a -1/0/1 scale).
    if minus_one_is_missing and isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value == -1:
        return True
    if isinstance(value, (list, tuple)):
        return False  # an empty list is a valid multi-label row: no label applies
    if empty_means_no_label:
        return False  # an empty cell in separator-joined multi-label data means "no label applies"
    return _is_missing(value)


def _infer_task(train: Dataset, label: str, args: DataArguments, source: str) -> str:
    """--task, or from the training labels: lists or a separator -> multi-label, fractions -> regression.

    Single-label text labels that look like joined multi-labels ('joy;love') are refused: trained as they
    are, every combination would become a class of its own.
    """
    if args.task != "auto":
        return args.task
    feature = train.features[label]
    if args.label_separator is not None or isinstance(feature, SequenceFeature):
        return MULTI_LABEL
    cells = column_values(train, label)
    values = [v for v in cells if v is not None]
    if any(isinstance(v, list) for v in values):
        return MULTI_LABEL
    floats = [v for v in values if isinstance(v, float)]
    if floats and any(not float(v).is_integer() for v in floats if not math.isnan(v)):
        return REGRESSION
    refuse_joined_labels(cells, column_values(train, ROW_COLUMN), source, label)
    return SINGLE_LABEL


# -------------------------------------------------------------------------------------- encoding


def _class_label_names(feature: Any) -> list[str] | None:
    """Names of a Hub ClassLabel (or a sequence of them), which the integer labels stand for."""
    if isinstance(feature, SequenceFeature):
        feature = feature.feature
    if isinstance(feature, list) and feature:
        feature = feature[0]
    return list(feature.names) if isinstance(feature, ClassLabel) else None


def _label_key(value: Any) -> Any:
    """Normalise one label value: integral numbers to int, strings stripped."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.strip()
    return value


def _encode_labels(
    splits: dict[str, Dataset], sources: dict[str, str], label: str, task: str, args: DataArguments
) -> tuple[LabelSchema, dict[str, Dataset]]:
    given_names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    hub_names = _class_label_names(splits["train"].features[label])
    separator = args.label_separator or DEFAULT_LABEL_SEPARATOR

    if task == REGRESSION:
        encoders = {role: _regression_values(split, label, sources[role]) for role, split in splits.items()}
        schema = LabelSchema(REGRESSION)
    elif task == MULTI_LABEL:
        name_lists = {
            role: [_label_set(v, separator, hub_names) for v in column_values(split, label)]
            for role, split in splits.items()
        }
        names = given_names or sorted({n for labels in name_lists["train"] for n in labels})
        schema = LabelSchema(MULTI_LABEL, names)
        encoders = {}
        for role, lists in name_lists.items():
            _refuse_unseen(splits[role], sources[role], label, [n for ls in lists for n in ls], lists, schema)
            index = schema.label2id
            encoders[role] = [_multi_hot([index[n] for n in ls], len(names)) for ls in lists]
    else:
        keys = {role: [_label_key(v) for v in column_values(split, label)] for role, split in splits.items()}
        train_rows = column_values(splits["train"], ROW_COLUMN)
        refuse_mixed_label_kinds(keys["train"], train_rows, sources["train"], label)
        schema = LabelSchema(SINGLE_LABEL, _single_label_names(keys["train"], given_names or hub_names, args))
        if schema.num_labels < 2:
            raise UserInputError(
                f"The training data ({sources['train']}) has a single label value ({schema.names[0]!r}) in "
                f"column '{label}': a classifier needs at least two classes."
            )
        encoders = {}
        for role, role_keys in keys.items():
            names = [_key_name(k, given_names or hub_names) for k in role_keys]
            _refuse_unseen(splits[role], sources[role], label, names, None, schema)
            index = schema.label2id
            encoders[role] = [index[n] for n in names]

    encoded = {}
    for role, split in splits.items():
        column = encoders[role]
        split = split.remove_columns(label) if label != "labels" else split.remove_columns("labels")
        encoded[role] = split.add_column("labels", column)
    # float32 labels: the models' BCE/MSE losses refuse float64 targets beside float32 logits.
    label_feature = {
        SINGLE_LABEL: ClassLabel(names=schema.names),
        MULTI_LABEL: SequenceFeature(Value("float32")),
        REGRESSION: Value("float32"),
    }[task]
    for role in encoded:
        encoded[role] = encoded[role].cast_column("labels", label_feature)
    return schema, encoded


def _key_name(key: Any, names: list[str] | None) -> str:
    if names is not None and isinstance(key, int) and 0 <= key < len(names):
        return names[key]
    return str(key)


def _single_label_names(train_keys: list[Any], names: list[str] | None, args: DataArguments) -> list[str]:
    unique = set(train_keys)
    if names is not None:
        out_of_range = sorted(k for k in unique if not (isinstance(k, int) and 0 <= k < len(names)))
        if out_of_range and args.class_names:
            raise UserInputError(
                f"--class-names gives {len(names)} names for integer labels 0..{len(names) - 1}, but the "
                f"training labels include {out_of_range[:ROWS_SHOWN]}. Give one name per label id, in order."
            )
        if not out_of_range:
            return list(names)
    if all(isinstance(k, int) for k in unique):
        return [str(k) for k in sorted(unique)]
    return sorted(str(k) for k in unique)


def _label_set(value: Any, separator: str, hub_names: list[str] | None) -> list[str]:
    if isinstance(value, (list, tuple)):
        items = [_key_name(_label_key(v), hub_names) for v in value]
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(separator)]
    elif _is_missing(value):
        items = []
    else:
        items = [_key_name(_label_key(value), hub_names)]
    return sorted({item for item in items if item != ""})


def _multi_hot(indices: list[int], size: int) -> list[float]:
    vector = [0.0] * size
    for index in indices:
        vector[index] = 1.0
    return vector


def _regression_values(split: Dataset, label: str, source: str) -> list[float]:
    """The labels as floats; a non-number, inf or NaN is refused naming its row."""
    values = []
    rows = column_values(split, ROW_COLUMN)
    for row, value in zip(rows, column_values(split, label)):
        try:
            values.append(float(value))
        except (TypeError, ValueError):
            raise UserInputError(
                f"Regression needs numeric labels, but {source} row {row} has {value!r} in column '{label}'. "
                "Fix the value, or use --task single_label for categories."
            ) from None
    refuse_non_finite(values, rows, source, label)
    return values


def _refuse_unseen(
    split: Dataset,
    source: str,
    label: str,
    names: list[str],
    per_row: list[list[str]] | None,
    schema: LabelSchema,
) -> None:
    """A validation/test label the training data never has cannot be predicted: refuse it by name."""
    known = set(schema.names)
    unseen = sorted(set(names) - known)
    if not unseen:
        return
    rows = column_values(split, ROW_COLUMN)
    if per_row is None:
        bad_rows = [r for r, n in zip(rows, names) if n not in known]
    else:
        bad_rows = [r for r, ls in zip(rows, per_row) if set(ls) - known]
    raise UserInputError(
        f"{source} has labels never seen in the training data: {', '.join(map(repr, unseen[:ROWS_SHOWN]))} "
        f"in column '{label}' (rows {row_list(bad_rows)}). The model can only learn labels present in train "
        f"({', '.join(schema.names[:10])}{' ...' if len(schema.names) > 10 else ''}): fix these rows or add "
        "examples of those labels to the training data."
    )
