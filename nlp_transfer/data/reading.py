"""Reading data: local files (numbered rows, refused naming the line), the bundled demo data, Hub datasets, the
--eval-file splits, and the unlabelled/labelled files of prediction and evaluation (`read_texts`, `read_labelled`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from datasets import Dataset, load_dataset
from datasets.utils import logging as datasets_logging

from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.checks import (
    check_encoding_name,
    check_layout,
    check_path,
    csv_structure_problem,
    describe_read_error,
    refuse_empty_texts,
)
from nlp_transfer.data.columns import ROW_COLUMN, column_values, find_text_columns
from nlp_transfer.data.labels import LabelMapping, LabelSchema
from nlp_transfer.errors import UserInputError

logger = logging.getLogger(__name__)

EVAL_FILE_PREFIX = "eval_"
PANDAS_INDEX_COLUMN = "__index_level_0__"
"""What the csv reader names a first column that pandas took for an index: rows had more fields than the header."""

FILE_BUILDERS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}


def demo_data_files() -> dict[str, str]:
    """The bundled demo data: customer-support messages in three classes, written for this package."""
    folder = resources.files("nlp_transfer") / "demo_data"
    return {"train": str(folder / "train.csv"), "validation": str(folder / "validation.csv")}


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
    model does not know is an error naming the rows, as in training. The file is mapped as one chunk
    (`LabelMapping`); `nlp-transfer evaluate` maps it chunk by chunk without holding its texts.
    """
    texts, pairs, dataset = _read_text_file(path, text_column, pair_column, "evaluation", encoding)
    columns = [c for c in dataset.column_names if c != ROW_COLUMN]
    mapping = LabelMapping(path, schema, _label_column(path, columns, label_column), label_separator)
    labels = mapping.map(column_values(dataset, mapping.column), first_row=1)
    mapping.refuse()
    return LabelledTexts(texts, pairs, labels)


def _label_column(path: str, columns: list[str], label_column: str | None) -> str:
    """--label-column, or 'label' / 'labels'; refused naming the file's columns."""
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
    return label_column


def _read_text_file(
    path: str, text_column: str | None, pair_column: str | None, role: str, encoding: str = "utf-8"
) -> tuple[list[str], list[str] | None, Dataset]:
    check_encoding_name(encoding)
    dataset = _read_file(path, role, encoding)
    columns = [c for c in dataset.column_names if c != ROW_COLUMN]
    text_column, pair_column = find_text_columns(path, columns, text_column, pair_column)
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


def _read_file(path_str: str, role: str, encoding: str = "utf-8", columns: list[str] | None = None) -> Dataset:
    """One data file as a Dataset with numbered rows; layout and read problems are refused naming the line.

    `columns` reads only those of a CSV/TSV (each is typed as in a whole read: pandas types a column alone)."""
    path, suffix = _check_file(path_str, role, encoding)
    builder, options = FILE_BUILDERS[suffix]
    if builder != "parquet":
        options = {**options, "encoding": encoding}
    if builder == "csv" and columns is not None:
        options = {**options, "usecols": columns}
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


def _check_file(path_str: str, role: str, encoding: str = "utf-8") -> tuple[Path, str]:
    """A data file's path and suffix, once it exists, has a known type, has rows and a layout read as meant."""
    path = Path(path_str).expanduser()
    check_path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_BUILDERS:
        raise UserInputError(
            f"Data file {path} has the unsupported type '{suffix}'. Use one of: {', '.join(FILE_BUILDERS)}."
        )
    if _has_no_rows(path, suffix, encoding):
        raise UserInputError(f"The {role} data ({path}) has no rows. Give a file with labelled examples.")
    if FILE_BUILDERS[suffix][0] != "parquet":
        check_layout(path, suffix, encoding)
    return path, suffix


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
