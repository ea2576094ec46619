"""`nlp-transfer evaluate`: a saved folder scored on a labelled file with the metric suite, bootstrap intervals,
its risk-coverage and (with --coverage) the coverage of its prediction sets.

The file is streamed: read in chunks of rows (`CorpusFile`), each chunk's labels mapped and its logits computed,
so that memory holds the logits and labels, never the texts; the labels follow `read_labelled`'s rules and refuse
its problems in its words (`read_labels_streamed`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import Dataset
from datasets.utils.json import ujson_loads

from nlp_transfer.data.checks import check_encoding_name, is_empty_text, refuse_empty_texts
from nlp_transfer.data.columns import find_text_columns
from nlp_transfer.data.labels import LabelMapping, LabelSchema
from nlp_transfer.data.reading import FILE_BUILDERS, _check_file, _label_column, _read_file
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.conformal import (
    abstention_report,
    coverage_report,
    resolve_level,
)
from nlp_transfer.evaluation.metrics import (
    EvaluationReport,
    bootstrap_intervals,
    reported_primary,
    reported_suite,
)
from nlp_transfer.inference.corpus_files import CorpusFile
from nlp_transfer.inference.predict import load_classifier
from nlp_transfer.settings import PackageSettings
from nlp_transfer.tasks import REGRESSION

logger = logging.getLogger(__name__)


@dataclass
class FolderEvaluation:
    """`nlp-transfer evaluate`'s result: the report, the primary metric, and bootstrap intervals."""

    model: str
    file: str
    task: str
    labels: list[str]
    primary_metric: str
    report: EvaluationReport
    thresholds: dict[str, float]
    intervals: dict[str, dict[str, float]]
    bootstrap: dict[str, Any] | None
    abstention: dict[str, Any] | None = None
    """Risk-coverage of the file (classification): accuracy at 100/90/80/50% answered, --min-confidence each."""
    conformal: dict[str, Any] | None = None
    """With --coverage: the level used, the empirical coverage and the mean set size (interval width)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "file": self.file,
            "task": self.task,
            "labels": self.labels,
            "primary_metric": self.primary_metric,
            "decision_thresholds": self.thresholds or None,
            **self.report.to_dict(),
            "confidence_intervals": self.intervals,
            "bootstrap": self.bootstrap,
            **({"abstention": self.abstention} if self.abstention is not None else {}),
            **({"conformal": self.conformal} if self.conformal is not None else {}),
        }


def evaluate_folder(
    model_dir: str | Path,
    file: str,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    metrics: Sequence[str] | None = None,
    bootstrap: int = 0,
    bootstrap_all: bool = False,
    confidence: float = 0.95,
    seed: int = 0,
    batch_size: int = 32,
    trust_remote_code: bool = False,
    encoding: str = "utf-8",
    coverage: float | None = None,
    chunk_rows: int = 4096,
) -> FolderEvaluation:
    """Score a trained folder (plain or adapter) on a labelled file with the suite; optional bootstrap CIs.

    Classification also gets its risk-coverage report; with `coverage`, the empirical coverage of the folder's
    conformal sets (intervals) at that level and their mean size (width). The file is read `chunk_rows` rows at
    a time: memory holds its labels and logits, not its texts."""
    _check_arguments(batch_size, bootstrap, confidence, chunk_rows)
    classifier = load_classifier(model_dir)
    settings = PackageSettings.read(classifier.model)
    level = resolve_level(coverage, settings.conformal, str(model_dir)) if coverage is not None else None
    task = classifier.task
    schema = LabelSchema(task, [] if task == REGRESSION else classifier.labels)
    data = read_labels_streamed(
        file, schema, text_column, text_pair_column, label_column, settings.label_separator, encoding, chunk_rows
    )
    primary = reported_primary(task, schema.num_labels, settings.primary_metric)
    suite = reported_suite(
        task, classifier.labels, metrics, primary, classifier.thresholds, trust_remote_code=trust_remote_code
    )
    logits = np.concatenate([classifier.logits(texts, pairs, batch_size=batch_size) for texts, pairs in data.texts()])
    report = suite.evaluate(logits, data.labels)
    intervals: dict[str, dict[str, float]] = {}
    resampled = None
    if bootstrap:
        targets = [spec.name for spec in suite.specs] if bootstrap_all else [primary]
        found = bootstrap_intervals(suite, logits, data.labels, targets, bootstrap, confidence, seed)
        intervals = {name: interval.to_dict() for name, interval in found.items()}
        resampled = {"resamples": bootstrap, "confidence": confidence, "seed": seed, "method": "percentile"}
    result = FolderEvaluation(
        str(model_dir), str(file), task, classifier.labels, primary, report, classifier.thresholds, intervals, resampled
    )
    if task != REGRESSION:
        result.abstention = abstention_report(suite, logits, data.labels)
    if level is not None:
        key, quantile = level
        outputs = suite.scores(logits)
        result.conformal = {"coverage_target": coverage, **coverage_report(outputs, data.labels, task, quantile, key)}
    return result


def _check_arguments(batch_size: int, bootstrap: int, confidence: float, chunk_rows: int) -> None:
    """`evaluate_folder`'s numeric arguments, refused before any work with the option to change."""
    if chunk_rows < 1:
        raise UserInputError(f"chunk_rows must be at least 1, not {chunk_rows}.")
    if batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, not {batch_size}.")
    if bootstrap < 0:
        raise UserInputError(f"--bootstrap must be 0 (off) or a number of resamples, not {bootstrap}.")
    if not 0 < confidence < 1:
        raise UserInputError(f"--confidence must be between 0 and 1 (e.g. 0.95), not {confidence}.")


# ------------------------------------------------------------------------------ the file, streamed


@dataclass
class StreamedLabels:
    """A labelled file checked and its labels mapped chunk by chunk (`read_labels_streamed`), without its texts:
    `texts()` reads them again, one chunk at a time, in the same chunks as the labels."""

    corpus: CorpusFile
    text: str
    pair: str | None
    labels: np.ndarray
    chunk_rows: int

    def texts(self) -> Iterator[tuple[list[str], list[str] | None]]:
        """Each chunk's texts (and second texts), as `read_labelled` gives them."""
        for table in self.corpus.chunks(self.chunk_rows):
            texts = [str(t) for t in _values(table, self.text)]
            yield texts, [str(t) for t in _values(table, self.pair)] if self.pair else None


@dataclass(frozen=True)
class _Columns:
    """The columns asked for (None: found by their default names) and the label separator."""

    text: str | None
    pair: str | None
    label: str | None
    separator: str | None


def read_labels_streamed(
    path: str,
    schema: LabelSchema,
    text_column: str | None = None,
    pair_column: str | None = None,
    label_column: str | None = None,
    label_separator: str | None = None,
    encoding: str = "utf-8",
    chunk_rows: int = 4096,
) -> StreamedLabels:
    """`read_labelled` that holds no texts: one pass over the file in chunks of `chunk_rows` rows (`CorpusFile`)
    checks the texts and maps the labels by the same rules (`LabelMapping`), and refuses the same problems, in the
    same words and order, under the file's row numbers.

    The values are those `read_labelled` reads: a CSV/TSV's label column is read alone by `datasets` (pandas types
    it: 1 is a class id, 1.0 the same label, NA no label), and a JSON Lines file that pyarrow cannot stream (a
    column mixing numbers and strings) is read by `datasets` too, as a JSON array is."""
    check_encoding_name(encoding)
    checked, suffix = _check_file(path, "evaluation", encoding)
    corpus = CorpusFile.open(checked, encoding)
    columns = _Columns(text_column, pair_column, label_column, label_separator)
    try:
        return _scan(corpus, path, suffix, schema, columns, chunk_rows)
    except _NotStreamable:
        logger.info("pyarrow cannot stream %s (a column mixes types): it is read by datasets.", path)
        return _scan(_ReadByDatasets(corpus.path, corpus.format, encoding), path, suffix, schema, columns, chunk_rows)


def _scan(
    corpus: CorpusFile, path: str, suffix: str, schema: LabelSchema, asked: _Columns, chunk_rows: int
) -> StreamedLabels:
    """The pass over the file: empty texts, the label column, and every chunk's labels mapped, then refused."""
    first = next(_chunks(corpus, 1), None)
    if first is None:
        raise UserInputError(f"The evaluation data ({corpus.path}) has no rows. Give a file with labelled examples.")
    text, pair = find_text_columns(path, first.column_names, asked.text, asked.pair)
    mapping, deferred = None, None
    try:
        mapping = LabelMapping(path, schema, _label_column(path, first.column_names, asked.label), asked.separator)
    except UserInputError as error:  # refused after the texts' problems, as a whole read refuses it
        deferred = error
    csv = FILE_BUILDERS[suffix][0] == "csv"
    parquet = FILE_BUILDERS[suffix][0] == "parquet"
    # The labels as a whole read types them (CSV/TSV: pandas; JSON: datasets), since the chunks hold text.
    typed = _read_file(path, "evaluation", corpus.encoding, [mapping.column]) if mapping and not parquet else None
    empty: dict[str, list[int]] = {column: [] for column in (text, pair) if column is not None}
    labels, row = [], 1
    for table in _chunks(corpus, chunk_rows):
        for column, rows in empty.items():
            rows += [row + i for i, value in enumerate(_values(table, column)) if _empty_text(value, csv)]
        if mapping is not None:
            labels.append(mapping.map(_label_values(table, mapping.column, typed, row, path), row))
        row += table.num_rows
    for column, rows in empty.items():
        refuse_empty_texts([""] * len(rows), rows, str(path), column)
    if deferred is not None:
        raise deferred
    assert mapping is not None
    if typed is not None and len(typed) != row - 1:
        raise _rows_differ(path, len(typed), row - 1, partial=False)
    mapping.refuse()
    return StreamedLabels(corpus, text, pair, np.concatenate(labels), chunk_rows)


class _NotStreamable(Exception):
    """pyarrow could not read a JSON Lines file that `datasets` may read."""


class _ReadByDatasets(CorpusFile):
    """A JSON Lines file read by `datasets`, in the same chunks: what `read_labelled` reads it with."""

    @property
    def streamed(self) -> bool:
        return False


def _chunks(corpus: CorpusFile, rows: int) -> Iterator[pa.Table]:
    """`corpus.chunks(rows)`; a JSON Lines file pyarrow cannot read raises `_NotStreamable`, to be read again."""
    try:
        yield from corpus.chunks(rows)
    except UserInputError:
        if corpus.format == "json" and corpus.streamed:
            raise _NotStreamable from None
        raise


def _values(table: pa.Table, column: str) -> list[Any]:
    """A column's values; a column `datasets` stored as JSON (it mixes types) decoded as `datasets` decodes it."""
    values = table.column(column)
    if isinstance(values.type, pa.JsonType):
        return [None if value is None else ujson_loads(value) for value in values.to_pylist()]
    return values.to_pylist()


CSV_MISSING = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA"]
    + ["NULL", "NaN", "None", "n/a", "nan", "null"]
)
"""The fields pandas reads as missing (its documented default `na_values`): `read_labelled` refuses such a text."""


def _empty_text(value: Any, csv: bool) -> bool:
    """`refuse_empty_texts`'s rule, and in a CSV/TSV (read as text) the fields pandas would have read as missing."""
    return is_empty_text(value) or (csv and value in CSV_MISSING)


def _label_values(table: pa.Table, column: str, typed: Dataset | None, first_row: int, path: str) -> list[Any]:
    """One chunk's labels: from the chunk (Parquet), or from the label column of a whole read (`typed`)."""
    if typed is None:
        return _values(table, column)
    values = typed[column][first_row - 1 : first_row - 1 + table.num_rows]
    if len(values) != table.num_rows:
        raise _rows_differ(path, len(typed), first_row - 1 + table.num_rows, partial=True)
    return list(values)


def _rows_differ(path: str, label_rows: int, text_rows: int, partial: bool) -> UserInputError:
    return UserInputError(
        f"{path} could not be read consistently: its label column has {label_rows} rows, its texts "
        f"{'at least ' if partial else ''}{text_rows}. A line of only spaces or a quote left open reads differently "
        "by the two readers (pandas, pyarrow): fix those lines."
    )
