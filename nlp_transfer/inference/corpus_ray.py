"""Predict over a whole corpus with Ray Data: the rows read by Ray, predicted by a pool of classifier actors (one
model load each, a GPU each where the cluster has them), and written by this process exactly as the local run
writes them (`corpus.predict_corpus`): the same parts, joined into the same file, byte for byte.

Why the bytes are the same: Ray reads the file with the local reader's types and cuts it into blocks of exactly
`chunk_rows` rows (a strict streaming repartition, in file order), so each actor call predicts the very chunk the
local run predicts, with as many torch threads (same texts, same padding, same sums: same numbers); the actor
returns each row as the local run encodes it (its JSON or CSV line, or its typed Parquet columns) with its place
in its chunk; this process takes the rows in file order (`preserve_order`), cuts them again into chunks of
`chunk_rows` rows, checks that each one is a whole actor chunk, and writes them as parts through `PartialOutput`.
A run stopped midway leaves the parts the local run would have left: the local backend's --resume continues it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from nlp_transfer.errors import UserInputError
from nlp_transfer.inference.corpus import (
    CorpusOptions,
    CorpusResult,
    _autocast,
    _count,
    _fingerprint,
    _Layout,
    _layout,
    _model_id,
    _predict_chunk,
    _progress_bar,
    check_input,
)
from nlp_transfer.inference.corpus_files import BLOCK_BYTES, CorpusFile, rebatch
from nlp_transfer.inference.corpus_output import PartialOutput, encode_part, output_format
from nlp_transfer.inference.records import SKIPPED

logger = logging.getLogger(__name__)

_Load = tuple[str, "str | None", "str | None"]
"""How an actor loads the classifier: the model (folder or Hub id), the device, the precision."""
# The columns an actor adds to its rows (never written): the row's place in the actor's chunk, why it was not
# predicted (null when it was), and its encoded JSON or CSV line (text outputs).
POSITION = "__nlp_transfer_position__"
REASON = "__nlp_transfer_skipped__"
ENCODED = "__nlp_transfer_encoded__"
REFUSAL = "__nlp_transfer_refusal__"
"""The one column of an actor's answer when it cannot predict (the model refused): the refusal's words."""


@dataclass(frozen=True)
class _ModelFacts:
    """What the driver needs of the model without loading it: the task (the output's fields) and its kind."""

    task: str
    onnx: bool


def predict_corpus_ray(
    model: str | Path,
    file: str | Path,
    output: str | Path | None = None,
    options: CorpusOptions | None = None,
    progress: bool = True,
    device: str | None = None,
    precision: str | None = None,
    stdout: IO[str] | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> CorpusResult:
    """`predict_corpus` on Ray Data: the same output (file or stdout), the same checks before anything runs.

    `model`: a trained folder (or Hub id) that every actor loads. `address`: the Ray cluster to join (a local
    one starts without it, unless this process is connected already). `workers`: classifier actors (default one
    per GPU of the cluster, else 2 or the CPU count if smaller). No --resume: that is the local backend's (it
    continues a stopped Ray run too)."""
    options = options or CorpusOptions()
    if workers is not None and workers < 1:
        raise UserInputError(f"--ray-workers must be at least 1, not {workers}.")
    if not isinstance(model, (str, Path)):
        raise UserInputError("--backend ray loads the model in each Ray actor: give its folder, not a loaded model.")
    ray = _import_ray()
    corpus, (text, pair, kept), target = check_input(file, output, options)
    facts = _model_facts(model)
    layout = _layout(text, pair, kept, options, facts)  # type: ignore[arg-type]  # reads .task only
    partial = PartialOutput(target, _fingerprint(corpus, options, _model_id(model, None))) if target else None
    form = output_format(target) if target is not None else "jsonl"
    _refuse_stray(partial)
    load = (_model_location(model), device, precision)
    started_here = not ray.is_initialized()
    if started_here:
        # Workers' prints would reach this process's stdout: not between the JSON lines written there.
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=bool(target))
    try:
        if partial is not None:
            partial.start(resume=False)
        with _ordered_context():
            dataset = _dataset(ray, corpus, layout, options, form, load, facts, workers)
            return _write(dataset, corpus, layout, options, form, partial, progress, stdout)
    finally:
        if started_here:
            ray.shutdown()


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - Ray without its data extra has no ray.data
    except ImportError:
        raise UserInputError(
            "--backend ray needs Ray with Ray Data: pip install 'nlp-transfer[ray]' (or pip install ray), or use the "
            "default local backend."
        ) from None
    return ray


def _model_facts(model: str | Path) -> _ModelFacts:
    """The task from the folder's config.json (found as `load_classifier` finds it), without loading weights."""
    from transformers import AutoConfig

    from nlp_transfer.inference.predict import _download, _looks_like_repo_id, check_trained_head, task_of
    from nlp_transfer.modeling.heads import register_heads
    from nlp_transfer.outputs import ADAPTER_CONFIG_FILE, CONFIG_FILE
    from nlp_transfer.settings import PackageSettings

    register_heads()
    path = Path(model).expanduser()
    if not path.exists() and _looks_like_repo_id(str(model)):
        path = _download(str(model))
    if not (path / CONFIG_FILE).is_file():
        raise UserInputError(
            f"{path} is not a trained classifier folder (no config.json). Give the --output-dir of a training run."
        )
    config = AutoConfig.from_pretrained(path)
    onnx = bool(PackageSettings.read(config).onnx_file)
    if not onnx and not (path / ADAPTER_CONFIG_FILE).is_file():
        check_trained_head(path)  # from the weights' headers: a base checkpoint is refused before Ray starts
    return _ModelFacts(task_of(config), onnx)


def _refuse_stray(partial: PartialOutput | None) -> None:
    """A folder left by a stopped run is the local backend's to continue (Ray runs have no --resume)."""
    if partial is not None and partial.folder.exists() and not partial.output.is_dir():
        raise UserInputError(
            f"{partial.folder} holds the predictions of an interrupted run ({partial.written()} chunks written). "
            "Continue it with the local backend (the same command without --backend ray, plus --resume), or "
            "delete that folder to start over."
        )


def _model_location(model: str | Path) -> str:
    """The model as the actors find it: a folder here by its absolute path (they need not share this process's
    working folder), else the Hub id."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


@contextmanager
def _ordered_context() -> Iterator[None]:
    """Ray Data's context for this run: rows kept in input order, Ray's own progress bars off (ours shows);
    the settings are put back afterwards."""
    from ray.data import DataContext

    context = DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars)
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    try:
        yield
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved


def _dataset(
    ray: Any,
    corpus: CorpusFile,
    layout: _Layout,
    options: CorpusOptions,
    form: str,
    load: _Load,
    facts: _ModelFacts,
    workers: int | None,
) -> Any:
    """The file read by Ray, cut into blocks of exactly `chunk_rows` rows, each predicted by one actor call."""
    needed = list(dict.fromkeys(name for name in (layout.text, layout.pair, *layout.kept) if name is not None))
    dataset = _read(ray, corpus, options.chunk_rows).select_columns(needed)
    dataset = dataset.repartition(target_num_rows_per_block=options.chunk_rows, strict=True)
    size, resources = _actor_resources(ray, workers, load[1], facts)
    logger.info("Predicting with %d Ray actors (%s each).", size, resources)
    return dataset.map_batches(
        _Predictor,
        fn_constructor_args=(load, layout, options, form, _threads()),
        batch_size=options.chunk_rows,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=size),  # `concurrency=size`, deprecated in Ray 2.5x
        zero_copy_batch=True,
        **resources,
    )


def _threads() -> int:
    """The actors' torch threads: this process's, as a local run would use here. The numbers a model computes on
    a CPU depend on the threads (they split the sums), so only then are they the local run's, bit for bit."""
    import torch

    return torch.get_num_threads()


def _read(ray: Any, corpus: CorpusFile, rows: int) -> Any:
    """The file as Ray Data reads it, typed as `CorpusFile` reads it (CSV/TSV: every column as text). JSON is
    read by `CorpusFile` itself, in one Ray task: its values become text as Python's json wrote them, which
    `ray.data.read_json` (pyarrow's types) cannot give."""
    path = str(corpus.path.resolve())
    common: dict[str, Any] = {"partitioning": None, "file_extensions": None}  # the file as named, no hive columns
    if corpus.format == "parquet":
        return ray.data.read_parquet(path, **common)
    if corpus.format == "json":
        return ray.data.from_items([0]).map_batches(
            lambda _: corpus.chunks(rows), batch_size=None, batch_format="pyarrow", num_cpus=1
        )
    import pyarrow.csv as pacsv

    names = next(corpus.chunks(1)).column_names
    return ray.data.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=corpus.encoding, block_size=BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter="\t" if corpus.format == "tsv" else ",", newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
        **common,
    )


def _actor_resources(ray: Any, workers: int | None, device: str | None, facts: _ModelFacts) -> tuple[int, dict]:
    """How many actors and what each reserves: a GPU where the cluster has them (and the model runs in PyTorch
    on one), else a share of the CPUs that leaves one for reading the file."""
    cluster = ray.cluster_resources()
    gpus = int(cluster.get("GPU", 0)) if device != "cpu" and not facts.onnx else 0
    cpus = float(cluster.get("CPU", 1))
    if device == "cuda" and not gpus:
        raise UserInputError("--device cuda: the Ray cluster has no GPU. Leave --device out, or join one that has.")
    size = workers or gpus or max(1, min(2, int(cpus)))
    if gpus:
        if size > gpus:
            logger.warning("%d actors of a GPU each on %d GPUs: the others wait for one.", size, gpus)
        return size, {"num_gpus": 1}
    spare = max(cpus - 1, 1.0) / size
    return size, {"num_cpus": float(int(spare)) if spare >= 1 else spare}


class _Predictor:
    """A Ray Data actor: one classifier loaded once; each chunk of rows -> its rows as this run writes them."""

    def __init__(self, load: _Load, layout: _Layout, options: CorpusOptions, form: str, threads: int) -> None:
        self.layout, self.options, self.form = layout, options, form
        self.refusal: UserInputError | None = None
        try:
            self._load(*load, threads)
        except UserInputError as error:  # answered to each call: a failed __init__ reaches the driver garbled
            self.refusal = error

    def _load(self, model: str, device: str | None, precision: str | None, threads: int) -> None:
        import torch

        from nlp_transfer.inference.predict import load_classifier

        torch.set_num_threads(threads)  # Ray sets fewer: the float sums would add up in another order
        self.classifier = load_classifier(model, device)
        self.autocast = _autocast(self.classifier, precision)
        layout = self.layout
        own = _layout(layout.text, layout.pair, layout.kept, self.options, self.classifier).fields
        if own != layout.fields:  # the driver read the task from config.json: the model must agree
            raise RuntimeError(f"The model loaded in a Ray actor writes {own}, the driver expected {layout.fields}.")

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.refusal is not None:  # as data: an exception's cause does not survive Ray Data's wrapping
            return pa.table({REFUSAL: [str(self.refusal)]})
        with self.autocast or nullcontext():
            part, records, _ = _predict_chunk(self.classifier, batch, self.layout, self.options, CorpusResult())
        internal = {
            POSITION: pa.array(range(len(records)), type=pa.int64()),
            REASON: pa.array([record.get(SKIPPED) for record in records], type=pa.string()),
        }
        if self.form == "parquet":
            return pa.table({**{name: part.column(name) for name in part.column_names}, **internal})
        lines = [encode_part(part, [record], self.form, self.layout.fields) for record in records]
        return pa.table({ENCODED: pa.array(lines, type=pa.binary()), **internal})


def _write(
    dataset: Any,
    corpus: CorpusFile,
    layout: _Layout,
    options: CorpusOptions,
    form: str,
    partial: PartialOutput | None,
    progress: bool,
    stdout: IO[str] | None,
) -> CorpusResult:
    """The actors' rows in file order, cut into the local run's chunks and written as its parts (or to stdout)."""
    import time

    result = CorpusResult(output=str(partial.output) if partial is not None else None)
    started = time.perf_counter()
    bar = _progress_bar(corpus, progress)
    try:
        for index, chunk in enumerate(rebatch(_batches(dataset), options.chunk_rows)):
            summary = _summary(chunk, result.rows + 1)
            _count(result, chunk.num_rows, summary)
            data = _encode(chunk, form, layout.fields)
            if partial is not None:
                partial.write_part(index, data, summary)
            else:
                (stdout or sys.stdout).write(data.decode("utf-8"))
            bar.update(chunk.num_rows)
    except Exception as error:
        refusal = _user_error(error, corpus)
        if partial is not None and (refusal is not None or partial.written() == 0):
            partial.discard()  # a refused input's parts would not join a corrected file's; none: nothing to resume
        if refusal is None:
            raise
        raise refusal from None
    finally:
        bar.close()
    if partial is not None:
        partial.finish(form, layout.fields)
    result.seconds = time.perf_counter() - started
    return result


def _batches(dataset: Any) -> Iterator[pa.RecordBatch]:
    for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        if REFUSAL in table.column_names:
            raise UserInputError(next(words for words in table.column(REFUSAL).to_pylist() if words is not None))
        yield from table.to_batches()


def _summary(chunk: pa.Table, first_row: int) -> dict[str, Any]:
    """The chunk's summary (as `_predict_chunk` makes it; rows numbered in the file), once it is known to be one
    whole actor call: otherwise its predictions could differ from the local run's (other texts, other padding)."""
    if chunk.column(POSITION).to_pylist() != list(range(chunk.num_rows)):
        raise RuntimeError(
            "Ray Data did not give the classifier the file's rows in chunks of --chunk-rows rows, so the output "
            "could differ from the local backend's. The parts written so far are right: the local backend's "
            "--resume continues them."
        )
    skipped: dict[str, list[int]] = {}
    for i, reason in enumerate(chunk.column(REASON).to_pylist()):
        if reason is not None:
            skipped.setdefault(reason, []).append(first_row + i)
    return {"predicted": chunk.num_rows - sum(len(rows) for rows in skipped.values()), "skipped": skipped}


def _encode(chunk: pa.Table, form: str, fields: list[str]) -> bytes:
    """The chunk's part, as `encode_part` makes the local run's."""
    if form == "parquet":
        return encode_part(pa.table({name: chunk.column(name) for name in fields}), [], form, fields)
    return b"".join(chunk.column(ENCODED).to_pylist())


def _user_error(error: BaseException, corpus: CorpusFile) -> UserInputError | None:
    """The refusal an error stands for: a UserInputError, or for a Ray task's error (it arrives without its
    cause) the refusal a local read of the file gives (a row the reader cannot parse), if any."""
    from ray.exceptions import RayError

    if isinstance(error, UserInputError) or not isinstance(error, RayError):
        return error if isinstance(error, UserInputError) else None
    try:
        for _ in corpus.chunks(1 << 14):
            pass
    except UserInputError as refusal:
        return refusal
    return None
