"""Labels: the `LabelSchema`, missing labels, the task inferred from the training labels, the labels encoded
as class ids, multi-hot vectors or regression values, and a labelled file's labels mapped onto a trained model's
one chunk at a time (`LabelMapping`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
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
            raise _not_numeric(source, row, value, label) from None
    refuse_non_finite(values, rows, source, label)
    return values


def _not_numeric(source: str, row: int, value: Any, label: str) -> UserInputError:
    return UserInputError(
        f"Regression needs numeric labels, but {source} row {row} has {value!r} in column '{label}'. "
        "Fix the value, or use --task single_label for categories."
    )


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


# -------------------------------------------------------------------------------- a trained model's labels


@dataclass
class LabelMapping:
    """A labelled file's labels mapped onto a trained model's (`schema`), one chunk of rows at a time (`map`).

    A label is matched by name first, then, for integer labels, as a class id (0..n-1). The problems of every
    chunk (rows without a label, labels the model does not know, regression values that are not finite numbers)
    are gathered under the file's row numbers and refused together by `refuse`, in the words and counts of one
    read of the whole file: the same rows give the same message however the file is cut into chunks.
    """

    source: str
    schema: LabelSchema
    column: str
    separator: str | None = None
    missing: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    """The row of each unknown label (a multi-label row once per unknown name, as counted before chunks)."""
    unknown_values: set[str] = field(default_factory=set)
    not_numeric: tuple[int, Any] | None = None
    non_finite: list[tuple[int, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Integer labels stand for class ids only when the model's names are not integers themselves: for
        # labels 1..5, a 0 must be refused, not read as the first class.
        self._numeric_names = any(name.lstrip("-").isdigit() for name in self.schema.names)
        self._label2id = self.schema.label2id

    def map(self, values: Sequence[Any], first_row: int) -> np.ndarray:
        """One chunk's labels (its first row is the file's row `first_row`): class ids (int64), multi-hot rows or
        regression values (float64). A label with a problem is recorded, and stands as 0 until `refuse`."""
        rows = range(first_row, first_row + len(values))
        if self.schema.task != MULTI_LABEL:
            self.missing += [r for r, v in zip(rows, values) if _is_missing(v)]
        if self.schema.task == REGRESSION:
            return np.asarray(self._regression(values, rows), dtype=np.float64)
        if self.schema.task == MULTI_LABEL:
            separator = self.separator or DEFAULT_LABEL_SEPARATOR
            vectors = []
            for row, value in zip(rows, values):
                names = _label_set(value, separator, None)
                found = [self._class_id(name) for name in names]
                self._unknown([(row, n) for n, i in zip(names, found) if i is None])
                vectors.append(_multi_hot([i for i in found if i is not None], self.schema.num_labels))
            return np.asarray(vectors, dtype=np.float64).reshape(len(vectors), self.schema.num_labels)
        ids = [self._class_id(v) for v in values]
        self._unknown([(r, v) for r, v, i in zip(rows, values, ids) if i is None])
        return np.asarray([0 if i is None else i for i in ids], dtype=np.int64)

    def refuse(self) -> None:
        """The problems found in every chunk so far, refused in the order of a whole read: missing labels first."""
        if self.missing:
            raise UserInputError(
                f"{self.source} has {len(self.missing)} rows without a label in column '{self.column}' (rows "
                f"{row_list(self.missing)}). Fix or remove them."
            )
        if self.not_numeric is not None:
            raise _not_numeric(self.source, *self.not_numeric, self.column)
        if self.non_finite:
            rows, values = zip(*self.non_finite)
            refuse_non_finite(values, rows, self.source, self.column)
        if self.unknown:
            shown = sorted(self.unknown_values)[:ROWS_SHOWN]
            raise UserInputError(
                f"{self.source} has labels the model does not know: {', '.join(shown)} in column '{self.column}' "
                f"(rows {row_list(self.unknown)}). The model's labels are: {', '.join(self.schema.names)}."
            )

    def _class_id(self, value: Any) -> int | None:
        key = _label_key(value)
        if str(key) in self._label2id:
            return self._label2id[str(key)]
        if isinstance(key, int) and not self._numeric_names and 0 <= key < self.schema.num_labels:
            return key
        return None

    def _unknown(self, found: list[tuple[int, Any]]) -> None:
        self.unknown += [row for row, _ in found]
        self.unknown_values |= {repr(value) for _, value in found}

    def _regression(self, values: Sequence[Any], rows: range) -> list[float]:
        numbers = []
        for row, value in zip(rows, values):
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.not_numeric = self.not_numeric or (row, value)
                number = 0.0
            if not math.isfinite(number):
                self.non_finite.append((row, number))
            numbers.append(number)
        return numbers
