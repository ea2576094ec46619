"""Running a grid's cells: `run_grid` (the cells a resume skips, one primary metric for them all, the local or
Ray backend, failed cells recorded and left for the next run, then the tables) and training one cell into its
folder under cells/."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nlp_transfer.config.data import DataArguments
from nlp_transfer.config.run import RunConfig
from nlp_transfer.data.prepare import load_data
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics import resolve_primary_metric
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.experiments.cells import DEFAULT_SPLIT_SEED, Grid, GridCell, GridOutcome
from nlp_transfer.experiments.report import write_report
from nlp_transfer.experiments.results import (
    CELLS_FOLDER,
    RUNS_FILE,
    _append,
    _current_rows,
    cell_row,
    learning_curves,
)
from nlp_transfer.outputs import (
    METRICS_FILE,
    check_incremental_folder,
    mark_owned,
    read_owner,
    refuse_inputs_inside,
)
from nlp_transfer.training.class_weights import label_counts
from nlp_transfer.training.fine_tune import fine_tune

logger = logging.getLogger(__name__)

FAILED_FILE = "failed.jsonl"
BACKENDS = ("local", "ray")
AUTO_METRIC = "auto"
DATA_OPTION_NAMES = {f.name for f in dataclasses.fields(DataArguments)}


# ------------------------------------------------------------------------------------------- running


def run_grid(
    grid: Grid,
    train: Callable[[RunConfig], Any] = fine_tune,
    progress: bool = True,
    backend: str = "local",
    ray_address: str | None = None,
    cpus_per_cell: float = 1,
) -> GridOutcome:
    """Train every cell without a row in runs.jsonl, appending each one's row as it finishes; then write tables.

    backend "local" trains the cells one after another in this process; "ray" runs them as Ray tasks (joining
    the cluster at `ray_address`, else starting a local one), as many at a time as the cluster has room for.
    Either way this process alone writes runs.jsonl. A failed cell is logged, recorded with its error and left
    for the next run; the grid goes on.
    """
    from tqdm.auto import tqdm

    if backend not in BACKENDS:
        raise UserInputError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")
    _claim_folder(grid)
    (grid.folder / FAILED_FILE).unlink(missing_ok=True)  # lists this run's failures only
    rows = _current_rows(grid)
    done = {row["cell"] for row in rows}
    todo = [cell for cell in grid.cells if cell.key not in done]
    skipped = [cell.key for cell in grid.cells if cell.key in done]
    if skipped:
        logger.info("%d of %d cells finished in an earlier run; %d to train.", len(skipped), len(grid.cells), len(todo))
    if todo:
        fix_primary_metric(todo)
    results = (
        _run_on_ray(grid, todo, train, ray_address, cpus_per_cell)
        if backend == "ray" and todo
        else _run_here(grid, todo, train)
    )
    trained, failed = [], {}
    bar = tqdm(total=len(grid.cells), initial=len(skipped), desc="grid cells", unit="cell", disable=not progress)
    for cell, row, error in results:
        bar.set_postfix_str(cell.key)
        if row is None:
            logger.error("Cell %s failed: %s", cell.key, error)
            failed[cell.key] = error or "unknown error"
            _append(grid.folder / FAILED_FILE, {"cell": cell.key, **cell.coordinates(), "error": error})
        else:
            _append(grid.folder / RUNS_FILE, row)
            rows.append(row)
            trained.append(cell.key)
        bar.update(1)
    bar.close()
    keys = {cell.key for cell in grid.cells}
    rows = [row for row in rows if row["cell"] in keys]
    write_report(grid.folder, rows, grid.axis_names, learning_curves(grid.folder, rows))
    return GridOutcome(rows, trained, failed, skipped)


CellResult = tuple[GridCell, "dict[str, Any] | None", "str | None"]


def _run_here(grid: Grid, cells: list[GridCell], train: Callable[[RunConfig], Any]) -> Iterator[CellResult]:
    for cell in cells:
        try:
            yield cell, _run_cell(grid, cell, train), None
        except Exception as error:  # noqa: BLE001 - one failed cell must not end the grid
            yield cell, None, f"{type(error).__name__}: {error}"


def _run_on_ray(
    grid: Grid, cells: list[GridCell], train: Callable[[RunConfig], Any], address: str | None, cpus: float
) -> Iterator[CellResult]:
    """Each cell a Ray task (its folder written by the worker: on a multi-node cluster the grid's folder must be
    on storage every node sees); results come back as tasks finish."""
    try:
        import ray
    except ImportError:
        raise UserInputError(
            "--backend ray needs Ray: pip install 'nlp-transfer[ray]' (or pip install ray), or use the default "
            "local backend."
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_run_cell)
    pending = {task.remote(grid, cell, train): cell for cell in cells}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            try:
                yield cell, ray.get(ready[0]), None
            except ray.exceptions.RayError as error:
                cause = getattr(error, "cause", None) or error
                lines = str(cause).strip().splitlines() or [""]
                yield cell, None, f"{type(cause).__name__}: {lines[-1]}"
    finally:
        for reference in pending:
            ray.cancel(reference)
        if started_here:
            ray.shutdown()


def fix_primary_metric(cells: list[GridCell]) -> None:
    """One primary metric for every cell that leaves it to the package (metric_for_best_model auto), chosen
    once from the whole training set: chosen per cell, a 16-row draw could get accuracy where the full set
    gets MCC, and the grid's figures would mix the two."""
    chosen: dict[str, str] = {}
    for cell in cells:
        if cell.options.get("metric_for_best_model", AUTO_METRIC) != AUTO_METRIC:
            continue
        data_options = {
            name: value
            for name, value in cell.options.items()
            if name in DATA_OPTION_NAMES and name not in ("max_train_samples", "train_sample")
        }
        key = json.dumps(data_options, sort_keys=True, default=str)
        if key not in chosen:
            config = RunConfig.from_dict({**data_options, "output_dir": None})
            data = load_data(config.data, seed=int(cell.options.get("split_seed", DEFAULT_SPLIT_SEED)))
            schema = data.schema
            counts = label_counts(schema.task, data.splits["train"]["labels"], schema.num_labels)
            primary = resolve_primary_metric(schema.task, counts, AUTO_METRIC)
            logger.info(
                "Primary metric for every cell: %s (%s, on the whole training set)", primary.name, primary.reason
            )
            chosen[key] = primary.name
        cell.options["metric_for_best_model"] = chosen[key]


def _run_cell(grid: Grid, cell: GridCell, train: Callable[[RunConfig], Any]) -> dict[str, Any]:
    """Train one cell into cells/KEY/run, keep its metrics.json (and the model only with keep_models)."""
    folder = grid.folder / CELLS_FOLDER / cell.key
    run_folder = folder / "run"
    config = RunConfig.from_dict({**cell.options, "output_dir": str(run_folder)})
    # A cell killed mid-training continues from its last checkpoint (not an option: it would change the
    # cell's fingerprint, and a cell is the same experiment whether or not it was interrupted).
    config.training.resume = True
    started = time.perf_counter()
    train(config)
    record = RunRecord.load(run_folder)
    shutil.copyfile(run_folder / METRICS_FILE, folder / METRICS_FILE)
    if not grid.keep_models:
        shutil.rmtree(run_folder)
    return cell_row(cell, record, wall_s=time.perf_counter() - started)


def _claim_folder(grid: Grid) -> None:
    """Refuse a grid folder that would overwrite what the user owns; mark a new one as the grid's.

    Cells are replaced whole (cells/KEY), so no input may lie under cells/; a folder that holds other files
    and is not a grid's (no runs.jsonl, no mark) is refused; the grid's own inputs (its file, its data) may sit
    in a new folder.
    """
    inputs = grid.input_paths()
    refuse_inputs_inside(grid.folder, inputs, part=CELLS_FOLDER)
    allowed = tuple(Path(path) for path in inputs.values() if path)  # the grid file and data kept beside results
    check_incremental_folder(grid.folder, "compare", {}, allowed, recognised=RUNS_FILE)  # earlier grids: no mark
    grid.folder.mkdir(parents=True, exist_ok=True)
    if read_owner(grid.folder) is None:
        mark_owned(grid.folder, "compare", whole=False)
