"""Predict over a whole corpus: a file read in chunks, each chunk predicted and written as soon as it is done.

Memory stays flat whatever the file's size (a chunk at a time; a reader thread reads the next one while the model
works on this one), the input's other columns can ride along (`keep_columns`), an empty text gets a row that says
so instead of shifting the rows after it, and a killed run continues with `resume=True` from the last chunk
written: the output then equals an uninterrupted run's, row for row (see `corpus_output`).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from nlp_transfer.data.checks import is_empty_text, refuse_empty_texts, row_list
from nlp_transfer.data.columns import find_text_columns
from nlp_transfer.errors import UserInputError
from nlp_transfer.inference.corpus_files import CorpusFile
from nlp_transfer.inference.corpus_output import PartialOutput, encode_part, json_line, output_format
from nlp_transfer.inference.predict import Classifier, load_classifier
from nlp_transfer.inference.records import (
    SKIPPED,
    field_types,
    prediction_fields,
    prediction_record,
    skipped_record,
)

logger = logging.getLogger(__name__)

ON_EMPTY = ("mark", "error")
CHUNK_ROWS = 4096
PREFETCH_CHUNKS = 2


@dataclass
class CorpusOptions:
    """How a corpus is read and what each row gets (the options of `nlp-transfer predict --file`)."""

    text_column: str | None = None
    pair_column: str | None = None
    keep_columns: list[str] | None = None
    """Input columns written before each prediction, in input order; ["all"] keeps every column."""
    on_empty: str = "mark"
    """mark: an empty text gets a row with `skipped`; error: refuse the file before predicting anything."""
    batch_size: int = 32
    chunk_rows: int = CHUNK_ROWS
    top_k: int | None = None
    all_scores: bool = False
    coverage: float | None = None
    min_confidence: float | None = None
    encoding: str = "utf-8"

    def check(self) -> None:
        if self.on_empty not in ON_EMPTY:
            raise UserInputError(f"--on-empty {self.on_empty!r}: use one of {', '.join(ON_EMPTY)}.")
        for option, value in (("--batch-size", self.batch_size), ("--chunk-rows", self.chunk_rows)):
            if value < 1:
                raise UserInputError(f"{option} must be at least 1, not {value}.")
        if self.top_k is not None and self.top_k < 1:
            raise UserInputError(f"--top-k must be at least 1, not {self.top_k}.")


@dataclass
class CorpusResult:
    """What a corpus run did: rows read, predicted, skipped (and why), taken from an earlier run, and its speed."""

    rows: int = 0
    predicted: int = 0
    predicted_here: int = 0
    """Predicted by this run (`predicted` counts the interrupted run's too)."""
    resumed_rows: int = 0
    skipped: dict[str, list[int]] = field(default_factory=dict)
    seconds: float = 0.0
    output: str | None = None

    def summary(self) -> str:
        rate = self.predicted_here / self.seconds if self.seconds else 0.0
        line = f"{self.rows:,} rows: {self.predicted:,} predicted"
        if self.resumed_rows:
            line += f" ({self.resumed_rows:,} rows were written by the interrupted run)"
        line += f", {self.predicted_here:,} in {self.seconds:.1f} s ({rate:,.0f} texts/s)"
        for reason, rows in self.skipped.items():
            line += f"; {len(rows):,} skipped ({reason}: row{'s' if len(rows) > 1 else ''} {row_list(rows)})"
        return line + (f". Wrote {self.output}." if self.output else ".")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Layout:
    """Which input columns are read and kept, and the output's fields."""

    text: str
    pair: str | None
    kept: list[str]
    fields: list[str]
    repeated: set[str]
    """`text` / `text_pair` left out of each row because their input column is kept."""


def predict_corpus(
    model: str | Path | Classifier,
    file: str | Path,
    output: str | Path | None = None,
    options: CorpusOptions | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
    precision: str | None = None,
    stdout: IO[str] | None = None,
) -> CorpusResult:
    """Predict every row of `file` into `output` (format from its extension; JSON Lines on `stdout` when None).

    `model`: a trained folder (loaded on `device` once the file has passed its checks, so a bad file is refused at
    once) or a loaded `Classifier`. `precision` "bf16" or "fp16": autocast on a GPU."""
    options = options or CorpusOptions()
    corpus, (text, pair, kept), target = check_input(file, output, options)
    classifier = model if isinstance(model, Classifier) else _load(model, device, progress)
    layout = _layout(text, pair, kept, options, classifier)
    autocast = _autocast(classifier, precision)
    if target is None and resume:
        raise UserInputError("--resume continues a file: give --output (the same one as the interrupted run).")
    model_id = _model_id(model, classifier)
    partial = PartialOutput(target, _fingerprint(corpus, options, model_id)) if target is not None else None
    done = partial.start(resume) if partial is not None else 0
    form = output_format(target) if target is not None else "jsonl"
    result = CorpusResult(output=str(target) if target is not None else None)
    started = time.perf_counter()
    bar = _progress_bar(corpus, progress)
    try:
        for index, table in enumerate(_prefetch(corpus.chunks(options.chunk_rows))):
            if index < done:  # written by the interrupted run: read past, not predicted again
                _count(result, table.num_rows, partial.summary(index), earlier=True)
            else:
                with autocast or nullcontext():
                    part_table, records, summary = _predict_chunk(classifier, table, layout, options, result)
                if partial is not None:
                    partial.write_part(index, encode_part(part_table, records, form, layout.fields), summary)
                else:
                    (stdout or sys.stdout).write("".join(json_line(record) for record in records))
            bar.update(table.num_rows)
    except UserInputError:
        if partial is not None:
            partial.discard()
        raise
    finally:
        bar.close()
    if partial is not None:
        partial.finish(form, layout.fields)
    result.seconds = time.perf_counter() - started
    return result


def _load(model: str | Path, device: str | None, progress: bool) -> Classifier:
    """load_classifier, without transformers' "Loading weights" bar when the run shows no bar (--quiet)."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    if not progress:
        transformers_logging.disable_progress_bar()
    try:
        return load_classifier(model, device)
    finally:
        if shown:
            transformers_logging.enable_progress_bar()


def _autocast(classifier: Classifier, precision: str | None) -> Any:
    """torch.autocast for bf16/fp16 on a GPU; refused elsewhere (on a CPU fp32 is the fast path)."""
    if precision is None:
        return None
    import torch

    device = next(classifier.model.parameters()).device
    if precision not in ("bf16", "fp16") or device.type != "cuda":
        raise UserInputError(
            f"--{precision} needs a CUDA GPU; this model runs on {device.type}, where fp32 is faster (leave it out)."
        )
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _count(result: CorpusResult, rows: int, summary: dict[str, Any], earlier: bool = False) -> None:
    """A chunk's rows and its summary added to the run's; `earlier`: written by the interrupted run."""
    result.rows += rows
    result.resumed_rows += rows if earlier else 0
    result.predicted += summary["predicted"]
    result.predicted_here += 0 if earlier else summary["predicted"]
    for reason, numbers in summary["skipped"].items():
        result.skipped.setdefault(reason, []).extend(numbers)


def check_input(
    file: str | Path, output: str | Path | None, options: CorpusOptions
) -> tuple[CorpusFile, tuple[str, str | None, list[str]], Path | None]:
    """What every backend checks before a model loads: the options, the file, its columns (text, pair, kept), the
    empty texts with --on-empty error, and that the output is not the input; the output's path."""
    options.check()
    corpus = CorpusFile.open(file, options.encoding)
    columns = _columns(corpus, options)
    if options.on_empty == "error":
        _refuse_empty(corpus, [columns[0], columns[1]], options.chunk_rows)
    target = Path(output).expanduser() if output is not None else None
    if target is not None and target.resolve() == corpus.path.resolve():
        raise UserInputError(f"--output {target} is the input file; write the predictions to another file.")
    return corpus, columns, target


def _columns(corpus: CorpusFile, options: CorpusOptions) -> tuple[str, str | None, list[str]]:
    """The text column(s) (named, or the defaults training uses) and the kept columns, in input order."""
    first = next(corpus.chunks(1), None)
    if first is None:
        raise UserInputError(f"{corpus.path} has no rows. Give a file with texts to classify.")
    columns = first.column_names
    keep = options.keep_columns or []
    kept = list(columns) if keep == ["all"] else keep
    also = tuple(("--keep-columns", name) for name in kept)
    text, pair = find_text_columns(corpus.path, columns, options.text_column, options.pair_column, also=also)
    return text, pair, [name for name in columns if name in kept]


def _layout(text: str, pair: str | None, kept: list[str], options: CorpusOptions, classifier: Classifier) -> _Layout:
    """The output's fields: kept columns, then the prediction's, then `skipped`."""
    fields = prediction_fields(
        classifier.task, pair is not None, options.top_k, options.all_scores, options.coverage, options.min_confidence
    )
    # A kept text column is the text itself: not written twice (as its column and as `text`).
    repeated = {"text"} if text in kept else set()
    repeated |= {"text_pair"} if pair is not None and pair in kept else set()
    fields = [name for name in fields if name not in repeated]
    clash = sorted(set(kept) & {*fields, SKIPPED})
    if clash:
        raise UserInputError(
            f"--keep-columns: the column{'s' if len(clash) > 1 else ''} {', '.join(clash)} would share a name with "
            "the prediction's fields; keep other columns, or rename those in the file."
        )
    return _Layout(text, pair, kept, [*kept, *fields, SKIPPED], repeated)


def _refuse_empty(corpus: CorpusFile, columns: list[str | None], chunk_rows: int) -> None:
    """--on-empty error: one pass over the file before predicting; the rows with an empty text are refused by the
    rule training applies (`refuse_empty_texts`, its words too)."""
    found: dict[str, list[int]] = {column: [] for column in columns if column is not None}
    start = 1
    for table in corpus.chunks(chunk_rows):
        for column, rows in found.items():
            rows += [start + i for i, value in enumerate(table.column(column).to_pylist()) if is_empty_text(value)]
        start += table.num_rows
    for column, rows in found.items():
        refuse_empty_texts([""] * len(rows), rows, str(corpus.path), column)


def _predict_chunk(
    classifier: Classifier,
    table: pa.Table,
    layout: _Layout,
    options: CorpusOptions,
    result: CorpusResult,
) -> tuple[pa.Table, list[dict[str, Any]], dict[str, Any]]:
    """One chunk's rows in input order: kept columns, then the prediction or the reason there is none; and its
    summary (rows predicted, rows skipped by reason), counted into `result`."""
    first_row = result.rows + 1
    texts = table.column(layout.text).to_pylist()
    pairs = table.column(layout.pair).to_pylist() if layout.pair else None
    reasons = [_skip_reason(texts[i], pairs[i] if pairs else None, layout) for i in range(len(texts))]
    chosen = [i for i, reason in enumerate(reasons) if reason is None]
    predictions = iter(
        classifier.predict(
            [str(texts[i]) for i in chosen],
            [str(pairs[i]) for i in chosen] if pairs else None,
            batch_size=options.batch_size,
            coverage=options.coverage,
            min_confidence=options.min_confidence,
        )
        if chosen
        else []
    )
    kept = {name: table.column(name).to_pylist() for name in layout.kept}
    records = []
    skipped: dict[str, list[int]] = {}
    for i, reason in enumerate(reasons):
        pair = pairs[i] if pairs else None
        if reason is None:
            row = prediction_record(str(texts[i]), pair, next(predictions), options.top_k, options.all_scores)
        else:
            row = skipped_record(texts[i], pair, classifier.task, reason, pairs is not None)
            skipped.setdefault(reason, []).append(first_row + i)
        row = {key: value for key, value in row.items() if key not in layout.repeated}
        records.append({**{name: values[i] for name, values in kept.items()}, **row})
    summary = {"predicted": len(chosen), "skipped": skipped}
    _count(result, table.num_rows, summary)
    return _part_table(table, records, layout, classifier), records, summary


def _skip_reason(text: Any, pair: Any, layout: _Layout) -> str | None:
    if is_empty_text(text):
        return "empty text"
    if layout.pair is not None and is_empty_text(pair):
        return "empty second text"
    return None


def _part_table(table: pa.Table, records: list[dict[str, Any]], layout: _Layout, classifier: Classifier) -> pa.Table:
    """The chunk as typed columns (Parquet): kept columns as read, prediction fields with their fixed types."""
    types = field_types(classifier.labels)
    predicted = [name for name in layout.fields if name not in layout.kept]
    columns = {name: table.column(name) for name in layout.kept}
    for name in predicted:
        columns[name] = pa.array([record.get(name) for record in records], type=types[name])
    return pa.table(columns)


def _model_id(model: str | Path | Classifier, classifier: Classifier) -> str:
    """The folder the model came from, as --resume compares it (a path spelled differently is the same folder)."""
    if not isinstance(model, Classifier):
        return str(Path(model).expanduser().resolve())
    return str(getattr(classifier.model, "name_or_path", None) or getattr(classifier.model, "path", ""))


def _fingerprint(corpus: CorpusFile, options: CorpusOptions, model_id: str) -> dict[str, Any]:
    """What must not change between a run and its --resume: the input as it was, the model, the options."""
    stat = corpus.path.stat()
    return {
        "input": str(corpus.path.resolve()),
        "input_bytes": stat.st_size,
        "input_modified_ns": stat.st_mtime_ns,
        "model": str(model_id),
        **{key: value for key, value in asdict(options).items() if key != "batch_size"},
    }


def _progress_bar(corpus: CorpusFile, enabled: bool) -> Any:
    """tqdm on stderr (rate and ETA), off when asked or when stderr is not a terminal."""
    from tqdm.auto import tqdm

    enabled = enabled and sys.stderr.isatty()
    total = corpus.estimated_rows() if enabled else None  # a pass over the file: only for a bar that shows
    return tqdm(total=total, unit="text", desc="predict", disable=not enabled, file=sys.stderr)


def _prefetch(chunks: Iterator[pa.Table], depth: int = PREFETCH_CHUNKS) -> Iterator[pa.Table]:
    """Read the next chunks in a thread while the caller predicts this one; the reader's errors come out here."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                slots.put(chunk)
            slots.put(done)
        except BaseException as error:  # handed to the caller, who raises it
            slots.put(error)

    reader = threading.Thread(target=read, name="corpus-reader", daemon=True)
    reader.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                reader.join(timeout=0.05)
