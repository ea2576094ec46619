"""Load, validate, infer the task, encode labels, split and tokenize.

Data code never touches the model. It turns the user's files (or a Hub dataset, or the bundled demo
data) into a `PreparedData`: a DatasetDict with a `labels` column, the label schema that becomes the
model config's `id2label`/`label2id`/`problem_type`, and the names of the text columns. Every problem
with the input is raised as one `UserInputError` that names the file, column, rows or value.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Value, load_dataset
from datasets import Sequence as SequenceFeature
from datasets.utils import logging as datasets_logging

from nlp_transfer.config.arguments import DataArguments
from nlp_transfer.config.long_text import LongTextSettings
from nlp_transfer.data.checks import (
    ROWS_SHOWN,
    check_encoding_name,
    check_layout,
    check_path,
    csv_structure_problem,
    describe_read_error,
    refuse_empty_texts,
    refuse_joined_labels,
    refuse_mixed_label_kinds,
    refuse_nested_labels,
    refuse_non_finite,
    row_list,
    text_keys,
    warn_conflicting_labels,
    warn_shared_texts,
)
from nlp_transfer.data.long_text import character_budget, count_long, cut_texts, encode_documents
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.documents import DOCUMENT
from nlp_transfer.tasks import MULTI_LABEL, PROBLEM_TYPES, REGRESSION, SINGLE_LABEL

logger = logging.getLogger(__name__)

EVAL_FILE_PREFIX = "eval_"

DEFAULT_LABEL_SEPARATOR = ";"
DEFAULT_TEXT_COLUMNS_TEXT = "'text' or 'sentence' (or 'sentence1' + 'sentence2' as a pair)"
"""The text columns found without --text-column (`_default_text_columns`), as error messages name them."""
ROW_COLUMN = "__row__"
"""1-based data-row number in the source file (header not counted), kept for error messages."""
MAX_LENGTH_CAP = 512
PANDAS_INDEX_COLUMN = "__index_level_0__"
"""What the csv reader names a first column that pandas took for an index: rows had more fields than the header."""

FILE_BUILDERS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}


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


def column_values(dataset: Dataset, name: str) -> list[Any]:
    """All values of one column as a list, read at once.

    datasets' `dataset[name]` is a lazy Column; iterating it decodes row by row (1.5 s for SST-2's 60k rows, and
    the checks read several columns per split), while slicing it reads the Arrow column in one go (20 ms).
    """
    return list(dataset[name][:])


def longest_first(lengths: Sequence[int]) -> np.ndarray:
    """Row indices from the longest row to the shortest (stable): batches of rows of similar length pad little.

    For evaluation and prediction, where the order changes no result: SST-2's validation sentences run from 2 to
    55 tokens, and a batch padded to its longest row spent most of its compute on padding. Put results back
    in input order with `np.argsort(order)`.
    """
    return np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")


def demo_data_files() -> dict[str, str]:
    """The bundled demo data: customer-support messages in three classes, written for this package."""
    folder = resources.files("nlp_transfer") / "demo_data"
    return {"train": str(folder / "train.csv"), "validation": str(folder / "validation.csv")}


def load_data(args: DataArguments, seed: int = 42) -> PreparedData:
    """Read, validate and label-encode the splits that `args` names; carve validation when absent.

    The options themselves are checked first (`DataArguments.check`, also part of `RunConfig.validate`).
    """
    args.check()
    check_encoding_name(args.encoding)
    raw, sources = _read_splits(args)
    text_column, pair_column, label_column = _resolve_columns(raw, args, sources)
    empty_means_no_label = args.label_separator is not None or args.task == MULTI_LABEL
    raw, dropped = _check_rows(
        raw, sources, (text_column, pair_column, label_column), empty_means_no_label, args.drop_invalid_rows
    )
    task = _infer_task(raw["train"], label_column, args, sources["train"])
    schema, splits = _encode_labels(raw, sources, label_column, task, args)

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
    return PreparedData(DatasetDict(splits), schema, text_column, pair_column, sources, dropped)


# ----------------------------------------------------------------------------------------- reading


def read_texts(
    path: str, text_column: str | None, pair_column: str | None, encoding: str = "utf-8"
) -> tuple[list[str], list[str] | None]:
    """Texts (and second texts) of an unlabelled file for prediction, with the same checks as training data."""
    texts, pairs, _ = _read_text_file(path, text_column, pair_column, "prediction", encoding)
    return texts, pairs


@dataclass
class LabelledTexts:
    """A labelled file read against a trained model's labels: texts, pairs and label ids/vectors/values."""

    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray


def read_labelled(
    path: str,
    schema: LabelSchema,
    text_column: str | None = None,
    pair_column: str | None = None,
    label_column: str | None = None,
    label_separator: str | None = None,
    encoding: str = "utf-8",
) -> LabelledTexts:
    """A labelled file for evaluation, its labels mapped onto `schema` (the trained model's labels).

    A label is matched by name first, then, for integer labels, as a class id (0..n-1); a label the
    model does not know is an error naming the rows, as in training.
    """
    texts, pairs, dataset = _read_text_file(path, text_column, pair_column, "evaluation", encoding)
    columns = [c for c in dataset.column_names if c != ROW_COLUMN]
    if label_column is not None and label_column not in columns:
        raise UserInputError(
            f"Column {label_column!r} (--label-column) is not in {path}; its columns are: {', '.join(columns)}. "
            "Name an existing column with --label-column."
        )
    label_column = label_column or next((c for c in ("label", "labels") if c in columns), None)
    if label_column is None:
        raise UserInputError(
            f"No label column found in {path}: looked for 'label' or 'labels'; its columns are {', '.join(columns)}. "
            "Name it with --label-column."
        )
    rows, values = column_values(dataset, ROW_COLUMN), column_values(dataset, label_column)
    missing = [r for r, v in zip(rows, values) if _is_missing(v) and schema.task != MULTI_LABEL]
    if missing:
        raise UserInputError(
            f"{path} has {len(missing)} rows without a label in column '{label_column}' (rows {row_list(missing)}). "
            "Fix or remove them."
        )
    if schema.task == REGRESSION:
        return LabelledTexts(texts, pairs, np.asarray(_regression_values(dataset, label_column, path)))
    label2id = schema.label2id
    # Integer labels stand for class ids only when the model's names are not integers themselves: for
    # labels 1..5, a 0 must be refused, not read as the first class.
    numeric_names = any(name.lstrip("-").isdigit() for name in schema.names)

    def class_id(value: Any) -> int | None:
        key = _label_key(value)
        if str(key) in label2id:
            return label2id[str(key)]
        if isinstance(key, int) and not numeric_names and 0 <= key < schema.num_labels:
            return key
        return None

    if schema.task == MULTI_LABEL:
        separator = label_separator or DEFAULT_LABEL_SEPARATOR
        sets = [_label_set(v, separator, None) for v in values]
        ids = [[class_id(name) for name in names] for names in sets]
        unknown = [(r, n) for r, names, found in zip(rows, sets, ids) for n, i in zip(names, found) if i is None]
        _refuse_unknown_labels(path, label_column, unknown, schema)
        return LabelledTexts(texts, pairs, np.asarray([_multi_hot(found, schema.num_labels) for found in ids]))
    ids = [class_id(v) for v in values]
    _refuse_unknown_labels(path, label_column, [(r, v) for r, v, i in zip(rows, values, ids) if i is None], schema)
    return LabelledTexts(texts, pairs, np.asarray(ids, dtype=np.int64))


def _refuse_unknown_labels(path: str, column: str, unknown: list[tuple[int, Any]], schema: LabelSchema) -> None:
    if unknown:
        shown = sorted({repr(v) for _, v in unknown})[:ROWS_SHOWN]
        raise UserInputError(
            f"{path} has labels the model does not know: {', '.join(shown)} in column '{column}' (rows "
            f"{row_list([r for r, _ in unknown])}). The model's labels are: {', '.join(schema.names)}."
        )


def _read_text_file(
    path: str, text_column: str | None, pair_column: str | None, role: str, encoding: str = "utf-8"
) -> tuple[list[str], list[str] | None, Dataset]:
    check_encoding_name(encoding)
    dataset = _read_file(path, role, encoding)
    columns = [c for c in dataset.column_names if c != ROW_COLUMN]
    if text_column is None:
        text_column, pair_column = _default_text_columns(columns, pair_column)
        if text_column is None:
            raise UserInputError(
                f"No text column found in {path}: looked for {DEFAULT_TEXT_COLUMNS_TEXT}; its columns are "
                f"{', '.join(columns)}. Name it with --text-column (and --text-pair-column for sentence pairs)."
            )
    for option, column in (("--text-column", text_column), ("--text-pair-column", pair_column)):
        if column is not None and column not in columns:
            raise UserInputError(
                f"Column {column!r} ({option}) is not in {path}; its columns are: {', '.join(columns)}. "
                f"Name an existing column with {option}."
            )
    rows = column_values(dataset, ROW_COLUMN)
    texts = column_values(dataset, text_column)
    refuse_empty_texts(texts, rows, str(path), text_column)
    pairs = column_values(dataset, pair_column) if pair_column else None
    if pairs is not None:  # an empty second text would be read as the text 'None', as training refuses it
        refuse_empty_texts(pairs, rows, str(path), pair_column)
    return [str(t) for t in texts], [str(t) for t in pairs] if pairs is not None else None, dataset


def _read_splits(args: DataArguments) -> tuple[dict[str, Dataset], dict[str, str]]:
    splits, sources = _read_hub_dataset(args) if args.dataset_name else _read_local_files(args)
    for name, path in args.eval_files().items():
        splits[eval_file_split(name)] = _read_file(path, f"--eval-file {name}", args.encoding)
        sources[eval_file_split(name)] = str(path)
    return splits, sources


def _read_local_files(args: DataArguments) -> tuple[dict[str, Dataset], dict[str, str]]:
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    if not any(files.values()):
        logger.info("No data given: using the bundled demo data (customer-support messages, 3 classes).")
        files = {**demo_data_files(), "test": None}
    splits, sources = {}, {}
    for name, path in files.items():
        if path:
            splits[name] = _read_file(path, name, args.encoding)
            sources[name] = str(path)
    return splits, sources


def eval_file_split(name: str) -> str:
    """The split that holds --eval-file NAME=FILE (prefixed, so that no name clashes with the run's splits)."""
    return f"{EVAL_FILE_PREFIX}{name}"


def _read_file(path_str: str, role: str, encoding: str = "utf-8") -> Dataset:
    """One data file as a Dataset with numbered rows; layout and read problems are refused naming the line."""
    path = Path(path_str).expanduser()
    check_path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_BUILDERS:
        raise UserInputError(
            f"Data file {path} has the unsupported type '{suffix}'. Use one of: {', '.join(FILE_BUILDERS)}."
        )
    builder, options = FILE_BUILDERS[suffix]
    if builder != "parquet":
        options = {**options, "encoding": encoding}
    if _has_no_rows(path, suffix, encoding):
        raise UserInputError(f"The {role} data ({path}) has no rows. Give a file with labelled examples.")
    if builder != "parquet":
        check_layout(path, suffix, encoding)
    try:
        with _quiet_datasets():
            dataset = load_dataset(builder, data_files={"data": str(path)}, split="data", **options)
    except Exception as error:  # the builders raise many types; the user needs the file and line named
        logger.debug("datasets could not read %s: %s", path, error)  # the library's own words, for --verbose
        problem = describe_read_error(path, suffix, encoding)
        raise UserInputError(problem or f"Could not read data file {path} as {suffix}: {_error_text(error)}") from None
    if builder == "csv" and PANDAS_INDEX_COLUMN in dataset.column_names:
        problem = csv_structure_problem(path, options.get("sep", ","), encoding)
        raise UserInputError(problem or f"{path} has rows with more fields than its header. Fix those rows.")
    return _number_rows(dataset)


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Read a local file without datasets' progress bars and error logs: for a bad file they come before, and
    repeat in raw pyarrow/pandas words, the one paragraph that names the line; a good file needs no bar.
    Under --verbose (the package logging at DEBUG) they stay."""
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    library = logging.getLogger("datasets")
    level, bars_on = library.level, datasets_logging.is_progress_bar_enabled()
    library.setLevel(logging.CRITICAL)
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        library.setLevel(level)
        if bars_on:
            datasets_logging.enable_progress_bar()


def _read_hub_dataset(args: DataArguments) -> tuple[dict[str, Dataset], dict[str, str]]:
    name = args.dataset_name
    try:
        loaded = load_dataset(name, args.dataset_config_name)
    except Exception as error:  # network, missing config, unknown id: all need the same advice
        raise UserInputError(
            f"Could not load Hub dataset '{name}'"
            + (f" (config '{args.dataset_config_name}')" if args.dataset_config_name else "")
            + f": {_first_line(error)}. Check the id and config name; offline (HF_DATASETS_OFFLINE=1) only "
            "datasets already in the local cache load."
        ) from None
    wanted = {"train": args.train_split, "validation": args.validation_split, "test": args.test_split}
    if wanted["validation"] is None and "validation" in loaded:
        wanted["validation"] = "validation"
    splits, sources = {}, {}
    for role, split in wanted.items():
        if split is None:
            continue
        if split not in loaded:
            raise UserInputError(
                f"Hub dataset '{name}' has no split '{split}' (for {role}); its splits are: {', '.join(loaded)}."
            )
        splits[role] = _number_rows(loaded[split])
        sources[role] = f"{name} split '{split}'"
    return splits, sources


def _has_no_rows(path: Path, suffix: str, encoding: str = "utf-8") -> bool:
    """An empty file, or a CSV/TSV with a header only: the builders fail on these with obscure messages."""
    if path.stat().st_size == 0:
        return True
    if suffix in (".csv", ".tsv", ".jsonl"):
        with open(path, encoding=encoding, errors="replace") as handle:
            lines = [line for _, line in zip(range(3), handle) if line.strip()]
        return len(lines) <= (1 if suffix != ".jsonl" else 0)
    return False


def _number_rows(dataset: Dataset) -> Dataset:
    return dataset.add_column(ROW_COLUMN, list(range(1, len(dataset) + 1)))


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _error_text(error: BaseException) -> str:
    """The first line of the innermost cause: datasets wraps the reader's own error in a generic one."""
    for _ in range(10):  # a chain is short; the bound guards against a cycle
        inner = error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    return _first_line(error)


# ------------------------------------------------------------------------------------ validation


def _default_text_columns(columns: list[str], pair: str | None) -> tuple[str | None, str | None]:
    """'text' or 'sentence', else the pair 'sentence1' + 'sentence2' (GLUE's names); None when none is there."""
    for name in ("text", "sentence"):
        if name in columns:
            return name, pair
    if "sentence1" in columns and "sentence2" in columns:
        return "sentence1", pair or "sentence2"
    return None, pair


def _resolve_columns(
    splits: dict[str, Dataset], args: DataArguments, sources: dict[str, str]
) -> tuple[str, str | None, str]:
    columns = [c for c in splits["train"].column_names if c != ROW_COLUMN]
    text, pair, label = args.text_column, args.text_pair_column, args.label_column
    if text is None:
        text, pair = _default_text_columns(columns, pair)
        if text is None:
            raise UserInputError(
                f"No text column found in {sources['train']}: looked for {DEFAULT_TEXT_COLUMNS_TEXT}; its columns "
                f"are {', '.join(columns)}. Name it with --text-column (and --text-pair-column for sentence pairs)."
            )
    if label is None:
        label = next((c for c in ("label", "labels") if c in columns), None)
        if label is None:
            raise UserInputError(
                f"No label column found in {sources['train']}: looked for 'label' or 'labels'; its columns are "
                f"{', '.join(columns)}. Name it with --label-column."
            )
    given = {"--text-column": args.text_column, "--text-pair-column": args.text_pair_column}
    given["--label-column"] = args.label_column
    for role, split in splits.items():
        present = [c for c in split.column_names if c != ROW_COLUMN]
        for option, column in (("--text-column", text), ("--text-pair-column", pair), ("--label-column", label)):
            if column is not None and column not in present:
                if given[option] and role == "train":
                    advice = f"Name one of its columns with {option}."
                elif given[option]:
                    advice = f"Every data file needs the columns of the training file: rename it in {sources[role]}."
                else:
                    advice = (
                        f"No {option} was given: '{column}' is the column found by its default name in "
                        f"{sources['train']}, and every data file needs the same columns. Rename the column in "
                        f"{sources[role]}, or name one that every file has with {option}."
                    )
                raise UserInputError(
                    f"Column '{column}' ({option}) is not in {sources[role]}; its columns are: {', '.join(present)}. "
                    + advice
                )
    return text, pair, label


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


# ----------------------------------------------------------------------------- splits and subsets


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


# ---------------------------------------------------------------------------------- tokenization


def resolve_max_length(tokenizer: Any, requested: int | None) -> int:
    """--max-length, or the tokenizer's limit capped at 512 (some tokenizers report 1e30)."""
    limit = min(int(getattr(tokenizer, "model_max_length", MAX_LENGTH_CAP) or MAX_LENGTH_CAP), MAX_LENGTH_CAP)
    if requested is None:
        return limit
    if requested <= 0:
        raise UserInputError(f"--max-length must be a positive number of tokens, not {requested}.")
    model_limit = int(getattr(tokenizer, "model_max_length", requested) or requested)
    if requested > model_limit:
        raise UserInputError(
            f"--max-length {requested} exceeds the tokenizer's limit of {model_limit} tokens. Use at most "
            f"{model_limit}."
        )
    return requested


def tokenize(
    data: PreparedData,
    tokenizer: Any,
    max_length: int | None,
    long_text: str = "truncate-head",
    chunk_stride: int = 0,
) -> DatasetDict:
    """Encode every split once, batched, cut to the resolved max length as `long_text` says, unpadded.

    Padding happens per batch in the collator (DataCollatorWithPadding), never to a fixed length here. With
    `chunk`, a text becomes one row per window, each with the text's label and a `document` column (the text's
    row in its split), by which evaluation puts a text's windows back together.
    """
    limit = resolve_max_length(tokenizer, max_length)
    text, pair = data.text_column, data.text_pair_column
    settings = LongTextSettings(mode=long_text, max_length=limit, stride=chunk_stride)
    settings.check()
    if pair and long_text != "truncate-head":
        raise UserInputError(
            f"--long-text {long_text} reads single texts, and this data has text pairs ({text}, {pair}): join the "
            "two texts into one column, or use --long-text truncate-head."
        )
    drop = [c for c in (text, pair, ROW_COLUMN) if c]
    for name, split in data.splits.items():  # once a split, before its batches: a pass over the Arrow lengths
        huge = sum(count_long(split.with_format("arrow")[column], limit) for column in (text, pair) if column)
        if huge:
            logger.info(
                "%d texts of %s are over %d characters: tokenized %s",
                huge,
                name,
                2 * character_budget(limit),
                "piece by piece into their windows (the same windows, without the encoding of all of a text)"
                if long_text == "chunk"
                else f"from the part --long-text {long_text} reads (the same tokens, without reading all of them)",
            )
    if long_text == "chunk":
        return data.splits.map(
            partial(_encode_chunks, tokenizer=tokenizer, settings=settings, text=text, drop=drop),
            batched=True,
            with_indices=True,
            remove_columns=data.splits["train"].column_names,  # rows multiply: every column is written anew
            desc="Tokenizing (chunks)",
        )

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        first = [str(t) for t in batch[text]]
        second = [str(t) for t in batch[pair]] if pair else None
        if long_text == "truncate-head" and second is None:
            return tokenizer(cut_texts(tokenizer, first, long_text, limit), truncation=True, max_length=limit)
        encoded = encode_documents(tokenizer, first, settings, second)  # the texts of a pair are cut together
        del encoded[DOCUMENT]  # one row per text in these modes
        return encoded

    return data.splits.map(encode, batched=True, remove_columns=drop, desc="Tokenizing")


def _encode_chunks(
    batch: dict[str, list[Any]],
    indices: list[int],
    tokenizer: Any,
    settings: LongTextSettings,
    text: str,
    drop: list[str],
) -> dict[str, list[Any]]:
    """One batch of texts as chunk rows: the tokenizer's columns, `document` (the text's row in the split), and
    every kept column (labels) repeated for each of the text's chunks."""
    encoded = encode_documents(tokenizer, [str(t) for t in batch[text]], settings)
    local = encoded[DOCUMENT]
    encoded[DOCUMENT] = [indices[i] for i in local]
    for name, values in batch.items():
        if name not in drop:
            encoded[name] = [values[i] for i in local]
    return encoded
