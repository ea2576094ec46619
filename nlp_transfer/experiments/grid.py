"""Grids of runs: strategies x training-set sizes x seeds (x any training option), on one fixed validation set.

What transfer saves is a question about the user's own data, answered with the seed spread shown: `compare`
trains every cell of a grid with `fine_tune`, one after another, and writes one row per run and a table of
mean +- std over seeds. A grid file is a training config (any option of `nlp-transfer train`) plus:

    strategies: [full, freeze, {strategy: lora, lora_r: 16, name: lora-r16}]
    train_sizes: [16, 64, 256, all]     # drawn stratified by label from the training set
    # an entry may have sizes of its own: {strategy: scratch, train_sizes: [16, 256, 8000, all]}
    seeds: [0, 1, 2]
    output_dir: runs/grid               # the grid's folder (runs.jsonl, runs.csv, summary.*, cells/)
    learning_rate: [2e-5, 1e-4]         # any option given a list is one more axis

Resumable: a cell is finished once its row is in `runs.jsonl` (written after the run's folder is complete), so a
re-run after a kill trains only the cells without a row; a failed cell is reported, recorded and retried on the
next run. Validation is the same for every cell: the validation file or split when given, else one split carved
from the training data with `split_seed` (default 42), before any size is drawn.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import re
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp_transfer.config.arguments import DataArguments, RunConfig, build_parser, load_config_file
from nlp_transfer.data.dataset import load_data
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics import resolve_primary_metric
from nlp_transfer.evaluation.record import RECORD_SPLITS, RunRecord, is_finite_number
from nlp_transfer.experiments.plots import plot_learning_curves, plot_metric_vs_parameters, plot_metric_vs_size
from nlp_transfer.experiments.savings import (
    TARGET_FRACTION,
    Scores,
    data_reduction,
    iteration_reduction,
    recommendations,
    reduction_against_best_scratch,
)
from nlp_transfer.outputs import (
    METRICS_FILE,
    check_incremental_folder,
    mark_owned,
    read_owner,
    refuse_inputs_inside,
)
from nlp_transfer.tables import markdown_table
from nlp_transfer.training.class_weights import label_counts
from nlp_transfer.training.fine_tune import fine_tune

logger = logging.getLogger(__name__)

GRID_KEYS = ("strategies", "train_sizes", "seeds", "output_dir", "split_seed", "keep_models")
ALL_ROWS = "all"
ITERATION_FIGURES = ("target", "steps_to_target", "examples_to_target", "seeds_reached", "iteration_reduction")
BEST_SCRATCH_FIGURES = (
    "scratch_target",
    "steps_to_scratch_target",
    "seeds_reached_scratch_target",
    "iteration_reduction_vs_best_scratch",
)
DEFAULT_SPLIT_SEED = 42
RUNS_FILE = "runs.jsonl"
FAILED_FILE = "failed.jsonl"
BACKENDS = ("local", "ray")
CELL_OPTIONS = ("strategy", "max_train_samples", "train_sample", "split_seed", "seed", "output_dir", "resume")
"""Options each cell sets itself; a grid file that names them outside its axes is refused."""
NOT_IN_GRIDS = ("push_to_hub", "hub_model_id", "resume_from_checkpoint")
"""Options that make no sense for many runs at once (every cell would push to one repository)."""
AUTO_METRIC = "auto"
# TrainingArguments options that take a list although argparse sees a str: a list is their value, not an axis.
LIST_OPTIONS = ("report_to", "fsdp", "optim_target_modules")
CELLS_FOLDER = "cells"
PATH_OPTIONS = ("train_file", "validation_file", "test_file", "model")
DATA_OPTION_NAMES = {f.name for f in dataclasses.fields(DataArguments)}
RUN_COLUMNS = (
    "train_rows",
    "trainable_parameters",
    "total_parameters",
    "optimizer_steps",
    "batch_size",
    "epochs",
    "train_runtime_s",
    "train_samples_per_second",
)


@dataclass(frozen=True)
class GridCell:
    """One run of the grid: its coordinates and the complete options of `nlp-transfer train` (but output_dir)."""

    strategy: str
    """The strategy entry's name: the strategy, or the `name` given to an entry with its own options."""
    size: int | None
    """Training rows to draw (stratified by label); None trains on all of them."""
    seed: int
    axes: tuple[tuple[str, Any], ...]
    """The values of the grid's other axes (options given as lists), in the file's order."""
    options: dict[str, Any] = field(compare=False, hash=False)
    fingerprint: str = field(default="", compare=False)
    """A hash of the options as the grid file gave them: a finished row whose options changed is not reused."""

    @property
    def key(self) -> str:
        """A readable, unique folder name: full_n64_s0, or lora_n64_s0_learning_rate=0.0001_1a2b3c."""
        parts = [self.strategy, f"n{self.size if self.size is not None else ALL_ROWS}", f"s{self.seed}"]
        if self.axes:
            parts += [f"{name}={_short(value)}" for name, value in self.axes]
            parts.append(hashlib.sha1(json.dumps(self.axes, default=str).encode()).hexdigest()[:6])
        return re.sub(r"[^\w.=+-]+", "-", "_".join(parts))

    def coordinates(self) -> dict[str, Any]:
        size = self.size if self.size is not None else ALL_ROWS
        return {"strategy": self.strategy, "train_size": size, "seed": self.seed, **dict(self.axes)}


@dataclass
class Grid:
    """The expanded grid: where it writes, its cells in run order, and the names of its extra axes."""

    folder: Path
    cells: list[GridCell]
    axis_names: list[str]
    keep_models: bool = False
    source: str | None = None
    """The grid file the grid came from (it may be kept in the grid's folder)."""

    def input_paths(self) -> dict[str, str | None]:
        """Every local input of the grid's cells by option name: data files, model folders, --eval-file files."""
        inputs: dict[str, str | None] = {"--config": self.source}
        for cell in self.cells:
            for name in PATH_OPTIONS:
                if cell.options.get(name):
                    inputs[f"{name} of {cell.key}"] = str(cell.options[name])
            for item in cell.options.get("eval_file") or []:
                inputs[f"eval_file of {cell.key}"] = str(item).rpartition("=")[2]
        return inputs


@dataclass
class GridOutcome:
    """What a `run_grid` call did: every row (old and new), the cells it trained and the ones that failed."""

    rows: list[dict[str, Any]]
    trained: list[str]
    failed: dict[str, str]
    skipped: list[str]


# ------------------------------------------------------------------------------------- the grid file


def load_grid(path: str | Path, overrides: dict[str, Any] | None = None) -> Grid:
    """Read a grid file (YAML or JSON) and expand it; `overrides` (e.g. output_dir from the CLI) win."""
    spec = {**load_config_file(path), **(overrides or {})}
    grid = expand_grid(spec, source=str(path))
    grid.source = str(path)
    return grid


def expand_grid(spec: dict[str, Any], source: str = "the grid") -> Grid:
    """Every cell of the grid, each checked as a training config before anything runs."""
    spec = {str(key).replace("-", "_"): value for key, value in spec.items()}
    if not spec.get("output_dir"):
        raise UserInputError(f"{source} needs an output_dir: the grid's folder (e.g. output_dir: runs/grid).")
    strategies = _strategy_entries(spec.get("strategies", ["full"]), source)
    sizes = _train_sizes(spec.get("train_sizes", [ALL_ROWS]), source)
    seeds = _seeds(spec.get("seeds", [0, 1, 2]), source)
    split_seed = spec.get("split_seed", DEFAULT_SPLIT_SEED)
    base = _absolute_paths({key: value for key, value in spec.items() if key not in GRID_KEYS})
    axes = _option_axes(base)
    _check_options(base, strategies, axes, source)
    fixed = {key: value for key, value in base.items() if key not in axes}
    fixed.setdefault("disable_tqdm", True)  # the grid's own progress bar stands for the runs' bars

    cells = []
    for name, strategy_options in strategies:
        entry_sizes = sizes
        if "train_sizes" in strategy_options:
            strategy_options = dict(strategy_options)
            entry_sizes = _train_sizes(strategy_options.pop("train_sizes"), f"the {name!r} entry of {source}")
        for axis_values in _product(list(axes.items())):
            for size in entry_sizes:
                for seed in seeds:
                    options = {**fixed, **strategy_options, **dict(axis_values)}
                    options.update(seed=seed, split_seed=split_seed, overwrite_output_dir=True)
                    if size is not None:
                        options.update(max_train_samples=size, train_sample="stratified")
                    fingerprint = hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode())
                    cells.append(GridCell(name, size, seed, tuple(axis_values), options, fingerprint.hexdigest()[:12]))
    _check_cells(cells, source)
    return Grid(
        Path(spec["output_dir"]).expanduser().resolve(), cells, list(axes), bool(spec.get("keep_models", False))
    )


def _absolute_paths(options: dict[str, Any]) -> dict[str, Any]:
    """Files and local model folders as absolute paths, so that a Ray worker started elsewhere finds them."""

    def absolute(value: Any) -> Any:
        if isinstance(value, list):
            return [absolute(item) for item in value]
        if isinstance(value, str):
            name, separator, path = value.rpartition("=") if "=" in value else ("", "", value)
            if Path(path).expanduser().exists():
                return f"{name}{separator}{Path(path).expanduser().resolve()}"
        return value

    return {name: absolute(value) if name in (*PATH_OPTIONS, "eval_file") else value for name, value in options.items()}


def _check_options(
    base: dict[str, Any], strategies: list[tuple[str, dict[str, Any]]], axes: dict[str, list[Any]], source: str
) -> None:
    misplaced = sorted(set(base) & set(CELL_OPTIONS))
    if misplaced:
        raise UserInputError(
            f"{source} sets {', '.join(misplaced)}: each cell sets these itself; use 'strategies', "
            "'train_sizes' and 'seeds' instead."
        )
    refused = sorted(name for name in NOT_IN_GRIDS if base.get(name))
    if refused:
        raise UserInputError(
            f"{source} sets {', '.join(refused)}: a grid trains many models; push the one you choose with "
            "'nlp-transfer push' (keep_models: true keeps them)."
        )
    overlap = sorted({name for _, options in strategies for name in options if name != "strategy"} & set(axes))
    if overlap:
        raise UserInputError(
            f"{source} gives {', '.join(overlap)} both as an axis and inside a strategy entry; the axis would "
            "override the entry. Keep one of them."
        )


def _check_cells(cells: list[GridCell], source: str) -> None:
    if not cells:
        raise UserInputError(f"{source} has no cells: 'strategies', 'train_sizes' and 'seeds' need a value each.")
    keys = [cell.key for cell in cells]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise UserInputError(
            f"{source} makes the cell {repeated[0]} more than once (a repeated size or axis value, or strategy "
            "names that differ only in punctuation); each cell must be distinct."
        )
    for cell in cells:
        _check_cell(cell, source)


def _strategy_entries(value: Any, source: str) -> list[tuple[str, dict[str, Any]]]:
    """[(name, options)]: a strategy name, or a mapping with `strategy`, its options and an optional `name`."""
    entries = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            entries.append((item, {"strategy": item}))
        elif isinstance(item, dict) and isinstance(item.get("strategy"), str):
            options = {str(key).replace("-", "_"): option for key, option in item.items() if key != "name"}
            entries.append((str(item.get("name", item["strategy"])), options))
        else:
            raise UserInputError(
                f"'strategies' in {source} lists strategy names or mappings such as "
                f"{{strategy: lora, lora_r: 16, name: lora-r16}}, not {item!r}."
            )
    for name, options in entries:
        if name == "scratch" and options["strategy"] != "scratch":
            raise UserInputError(
                f"'strategies' in {source} names a {options['strategy']} entry 'scratch': that name marks the "
                "baseline that transfer is measured against; choose another."
            )
    names = [name for name, _ in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserInputError(f"'strategies' in {source} names {', '.join(repeated)} twice: give each entry a 'name'.")
    return entries


def _train_sizes(value: Any, source: str) -> list[int | None]:
    sizes: list[int | None] = []
    for item in value if isinstance(value, list) else [value]:
        if item == ALL_ROWS:
            sizes.append(None)
        elif isinstance(item, int) and not isinstance(item, bool) and item > 0:
            sizes.append(item)
        else:
            raise UserInputError(f"'train_sizes' in {source} holds positive numbers or 'all', not {item!r}.")
    return sizes


def _seeds(value: Any, source: str) -> list[int]:
    seeds = value if isinstance(value, list) else [value]
    if not seeds or not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in seeds):
        raise UserInputError(f"'seeds' in {source} must be a list of integers, e.g. [0, 1, 2], not {value!r}.")
    if len(set(seeds)) != len(seeds):
        raise UserInputError(f"'seeds' in {source} repeats a seed: {seeds}.")
    return seeds


def _option_axes(options: dict[str, Any]) -> dict[str, list[Any]]:
    """Options given a list of values. A list-valued option (nargs + or *) is an axis only as a list of lists."""
    actions = {action.dest: action for action in build_parser()._actions}
    axes = {}
    for name, value in options.items():
        if not isinstance(value, list):
            continue
        takes_list = name in LIST_OPTIONS or (name in actions and actions[name].nargs in ("+", "*"))
        if takes_list and not all(isinstance(item, list) for item in value):
            continue
        if not value:
            raise UserInputError(f"Option '{name}' is an empty list: give the values of its axis, or leave it out.")
        axes[name] = value
    return axes


def _product(axes: list[tuple[str, list[Any]]]) -> list[list[tuple[str, Any]]]:
    combinations: list[list[tuple[str, Any]]] = [[]]
    for name, values in axes:
        combinations = [done + [(name, value)] for done in combinations for value in values]
    return combinations


def _check_cell(cell: GridCell, source: str) -> None:
    try:
        RunConfig.from_dict({**cell.options, "output_dir": None})
    except UserInputError as error:
        raise UserInputError(f"{source}, cell {cell.key}: {error}") from None


def _short(value: Any) -> str:
    """An axis value as a reader wants it in a name or a table: a path by its last part."""
    text = str(value)
    return Path(text).name if "/" in text else text


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


def learning_curves(folder: Path, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, float]] | None]:
    """Each finished cell's validation learning curve, from its kept metrics.json."""
    curves = {}
    for row in rows:
        path = folder / CELLS_FOLDER / row["cell"]
        curves[row["cell"]] = RunRecord.load(path).learning_curve if (path / METRICS_FILE).exists() else None
    return curves


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


def cell_row(cell: GridCell, record: RunRecord, wall_s: float | None = None) -> dict[str, Any]:
    """One row of runs.csv: the cell's coordinates, run figures and every metric of each evaluated split."""
    row: dict[str, Any] = {"cell": cell.key, **cell.coordinates(), "primary_metric": record.primary_metric}
    row["options"] = cell.fingerprint
    row["greater_is_better"] = record.greater_is_better
    row.update(
        train_rows=record.num_examples.get("train"),
        trainable_parameters=record.trainable_parameters,
        total_parameters=record.total_parameters,
        optimizer_steps=record.optimizer_steps,
        batch_size=record.hyperparameters.effective_batch_size,
        epochs=record.epochs,
        train_runtime_s=record.train_runtime_s,
        train_samples_per_second=record.train_samples_per_second,
        wall_s=round(wall_s, 3) if wall_s is not None else None,
    )
    keys = [key for key in ("eval", "test", *(record.eval_files or {})) if record.split(key)]
    row["splits"] = ";".join(keys)
    for key in keys:
        row.update({f"{key}_{name}": value for name, value in record.results(key).items()})
        # The cell's scores are calibrated (the metrics above); the raw model's, for the strategy's own calibration.
        before = ((record.calibration or {}).get(key) or {}).get("before") or {}
        row.update({f"{key}_{name}_uncalibrated": before[name] for name in ("ece", "log_loss") if name in before})
    return row


def split_keys(rows: list[dict[str, Any]]) -> list[str]:
    """The evaluated splits of the rows ('eval', 'test', then --eval-file names), in order of appearance."""
    keys: list[str] = []
    for row in rows:
        keys += [key for key in (row.get("splits") or "eval").split(";") if key and key not in keys]
    return keys


def finished_cells(grid: Grid) -> set[str]:
    """The keys of the grid's cells that already have a row in runs.jsonl."""
    keys = {cell.key for cell in grid.cells}
    return {row["cell"] for row in _finished_rows(grid.folder)} & keys


def _finished_rows(folder: Path) -> list[dict[str, Any]]:
    path = folder / RUNS_FILE
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: that cell simply runs again
            logger.warning("%s line %d is incomplete; its cell runs again.", path, number)
    return rows


def _append(path: Path, row: dict[str, Any]) -> None:
    """One JSON line; after a line cut by a kill, a newline first, so that the new row stands on its own."""
    torn = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(("\n" if torn else "") + json.dumps(row) + "\n")


# ------------------------------------------------------------------------------------------- tables


def aggregate(rows: list[dict[str, Any]], axis_names: list[str]) -> list[dict[str, Any]]:
    """Mean, sample standard deviation (n-1; empty for one seed) and the seed count of every numeric column,
    one entry per strategy x size x other axes, in the order the rows first appear."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_group_key(row, axis_names), []).append(row)
    summary = []
    for members in groups.values():
        first = members[0]
        entry: dict[str, Any] = {name: first.get(name) for name in ("strategy", "train_size", *axis_names)}
        entry["seeds"] = len(members)
        entry["primary_metric"] = first.get("primary_metric")
        for column in _numeric_columns(members):
            values = [float(row[column]) for row in members if is_finite_number(row.get(column))]
            entry[f"{column}_mean"] = statistics.mean(values)
            entry[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else None
        summary.append(entry)
    return summary


def _group_key(row: dict[str, Any], axis_names: list[str]) -> tuple[str, ...]:
    """The seeds of one strategy x size x other axes share this key (values as JSON: lists and paths compare)."""
    return tuple(json.dumps(row.get(name), default=str) for name in ("strategy", "train_size", *axis_names))


def _numeric_columns(rows: list[dict[str, Any]]) -> list[str]:
    skip = {"seed", "train_size"}
    columns: list[str] = []
    for row in rows:
        for name, value in row.items():
            if name not in skip and name not in columns and is_finite_number(value):
                columns.append(name)
    return columns


def scores_of(rows: list[dict[str, Any]]) -> Scores | None:
    """The primary metric and the split the report reads: test when every run has it, else validation."""
    if not rows:
        return None
    metrics = sorted({row["primary_metric"] for row in rows})
    if len(metrics) > 1:
        logger.warning("The cells have different primary metrics (%s): no derived figures or plots.", metrics)
        return None
    metric = metrics[0]
    split = "test" if all(is_finite_number(row.get(f"test_{metric}")) for row in rows) else "eval"
    return Scores(split, metric, bool(rows[0].get("greater_is_better", True)))


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


def report_grid(grid: Grid) -> list[dict[str, Any]]:
    """Tables and plots from the cells finished so far, training nothing (a long grid can be read while it
    runs, or after a kill); returns the rows."""
    keys = {cell.key for cell in grid.cells}
    rows = [row for row in _current_rows(grid) if row["cell"] in keys]
    if not rows:
        raise UserInputError(f"{grid.folder} has no finished cells of this grid yet: nothing to report.")
    write_report(grid.folder, rows, grid.axis_names, learning_curves(grid.folder, rows))
    return rows


def _current_rows(grid: Grid) -> list[dict[str, Any]]:
    """The rows of runs.jsonl; refused when a row's cell now has other options (the grid file was edited).

    Rows of cells the grid no longer has (a size or seed taken out) are kept in the file and left out of the tables.
    """
    rows = _finished_rows(grid.folder)
    fingerprints = {cell.key: cell.fingerprint for cell in grid.cells}
    stale = sorted(
        {
            row["cell"]
            for row in rows
            if row["cell"] in fingerprints and row.get("options") not in (None, fingerprints[row["cell"]])
        }
    )
    if stale:
        raise UserInputError(
            f"{grid.folder / RUNS_FILE} holds results of cells whose options have changed since ({stale[0]}"
            f"{f' and {len(stale) - 1} more' if len(stale) > 1 else ''}): give the grid a new output_dir, or "
            "delete those rows to re-run them."
        )
    return _one_row_per_cell(rows, grid.folder / RUNS_FILE)


def _one_row_per_cell(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """The latest row of each cell, in the order cells first appear: a cell trained twice (two `compare`
    processes on one folder) would otherwise count as two seeds and shrink the spread the tables report."""
    repeated = sorted(key for key, count in Counter(row["cell"] for row in rows).items() if count > 1)
    if repeated:
        logger.warning(
            "%s has more than one row for %s (trained more than once): the latest row of each is used.",
            path,
            ", ".join(repeated),
        )
    return list({row["cell"]: row for row in rows}.values())


def write_report(
    folder: Path,
    rows: list[dict[str, Any]],
    axis_names: list[str],
    curves: dict[str, list[dict[str, float]] | None] | None = None,
) -> dict[str, Path]:
    """runs.csv (one row per run); summary.csv / .json / .md (mean +- std over seeds, with the derived figures
    of `savings`); recommendations.json; and the three plots."""
    curves = curves or {}
    _warn_of_mixed_batch_sizes(rows, axis_names)
    summary = aggregate(rows, axis_names)
    scores = scores_of(rows)
    lines: list[str] = []
    if scores is not None:
        add_derived_figures(summary, rows, curves, scores, axis_names)
        lines = recommendations(summary, scores, axis_names)
    paths = {name: folder / name for name in ("runs.csv", "summary.csv", "summary.json", "summary.md")}
    for path, table in ((paths["runs.csv"], rows), (paths["summary.csv"], summary)):
        columns = _columns(table)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows({name: _csv_value(entry.get(name)) for name in columns} for entry in table)
    paths["summary.json"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    markdown = summary_markdown(summary, axis_names, scores, split_keys(rows))
    if lines:
        markdown += "\n\nRecommendation per size:\n\n" + "\n".join(f"- {line}" for line in lines)
    paths["summary.md"].write_text(markdown + "\n", encoding="utf-8")
    paths["recommendations.json"] = folder / "recommendations.json"
    paths["recommendations.json"].write_text(json.dumps(lines, indent=2) + "\n", encoding="utf-8")
    if scores is not None:
        paths.update(_plots(folder, summary, rows, curves, scores, axis_names))
    return paths


def _warn_of_mixed_batch_sizes(rows: list[dict[str, Any]], axis_names: list[str]) -> None:
    """Seeds of one strategy and size trained at different batch sizes: a cell's options (its fingerprint) do not
    hold the package's defaults, so a grid resumed after an upgrade that changed a recipe mixes two settings."""
    sizes: dict[tuple, set[int]] = {}
    names: dict[tuple, str] = {}
    for row in rows:
        group = _group_key(row, axis_names)
        names[group] = " ".join(_short(row.get(name)) for name in ("strategy", "train_size", *axis_names))
        if row.get("batch_size") is not None:  # rows of older versions did not record it
            sizes.setdefault(group, set()).add(row["batch_size"])
    for group, batches in sizes.items():
        if len(batches) > 1:
            logger.warning(
                "The seeds of %s trained at different batch sizes (%s): the package's defaults changed between "
                "their runs. Re-run the grid into a new output_dir to compare like with like.",
                names[group],
                ", ".join(map(str, sorted(batches))),
            )


def add_derived_figures(
    summary: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    curves: dict[str, list[dict[str, float]] | None],
    scores: Scores,
    axis_names: list[str],
) -> None:
    """Name the data-reduction factor and the iteration figures in each summary entry (None where they do
    not apply: scratch itself, or no scratch in the grid)."""
    factors = data_reduction(summary, scores, axis_names)
    iterations = iteration_reduction(summary, rows, curves, scores, axis_names)
    against_best = reduction_against_best_scratch(summary, rows, curves, scores, axis_names)
    for index, entry in enumerate(summary):
        entry["data_reduction"] = factors.get(index)
        figures = {**iterations.get(index, {}), **against_best.get(index, {})}
        for name in (*ITERATION_FIGURES, *BEST_SCRATCH_FIGURES):
            entry[name] = figures.get(name)


def _plots(
    folder: Path,
    summary: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    curves: dict[str, list[dict[str, float]] | None],
    scores: Scores,
    axis_names: list[str],
) -> dict[str, Path]:
    paths = {
        "metric_vs_size.png": plot_metric_vs_size(summary, scores, axis_names, folder / "metric_vs_size.png"),
        "metric_vs_parameters.png": plot_metric_vs_parameters(
            summary, scores, axis_names, folder / "metric_vs_parameters.png"
        ),
    }
    curve_plot = plot_learning_curves(rows, curves, scores, axis_names, folder / "learning_curves.png")
    if curve_plot is not None:
        paths["learning_curves.png"] = curve_plot
    return paths


def _columns(table: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for entry in table:
        columns += [name for name in entry if name not in columns]
    return columns


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def summary_markdown(
    summary: list[dict[str, Any]],
    axis_names: list[str],
    scores: Scores | None = None,
    splits: list[str] | None = None,
) -> str:
    """The aggregated table for people: coordinates, primary metric on each evaluated split (validation, test,
    --eval-file names) as mean +- std, the derived figures, trainable parameters, optimizer steps, train time
    and the seed count."""
    if not summary:
        return "No finished runs yet."
    headers = ["strategy", "train size", *axis_names]
    primary = scores.metric if scores else summary[0].get("primary_metric") or "loss"
    splits = [key for key in splits or ["eval", "test"] if any(f"{key}_{primary}_mean" in entry for entry in summary)]
    headers += [f"{RECORD_SPLITS.get(key, key)} {primary}" for key in splits]
    derived = any(entry.get("data_reduction") or entry.get("iteration_reduction") for entry in summary)
    if derived:
        headers += ["data reduction", "steps to target", "iteration reduction"]
    against_best = any(entry.get("scratch_target") is not None for entry in summary)
    if against_best:
        headers += [f"iteration reduction to {TARGET_FRACTION:.0%} of scratch's best"]
    headers += ["trainable parameters", "optimizer steps", "train time (s)", "seeds"]
    lines = []
    for entry in summary:
        cells = [str(entry["strategy"]), str(entry["train_size"]), *(_short(entry.get(name)) for name in axis_names)]
        cells += [_mean_std(entry, f"{key}_{primary}") for key in splits]
        if derived:
            steps = entry.get("steps_to_target")
            reached = f"{steps:.0f} ({entry.get('seeds_reached')})" if steps is not None else "never"
            cells += [entry.get("data_reduction") or "–", reached, entry.get("iteration_reduction") or "–"]
        if against_best:
            cells += [_against_best_scratch(entry)]
        cells += [_mean(entry, "trainable_parameters", "{:,.0f}"), _mean(entry, "optimizer_steps", "{:.0f}")]
        cells += [_mean(entry, "train_runtime_s", "{:.1f}"), str(entry["seeds"])]
        lines.append(cells)
    return markdown_table(headers, lines)


def _against_best_scratch(entry: dict[str, Any]) -> str:
    reduction, steps = entry.get("iteration_reduction_vs_best_scratch"), entry.get("steps_to_scratch_target")
    if reduction is None:
        return "–"
    target = f"to {entry['scratch_target']:.4f}"
    if steps is None:
        return f"{reduction} ({target})"
    return f"{reduction} ({steps:.0f} steps {target}, {entry.get('seeds_reached_scratch_target')} seeds)"


def _mean_std(entry: dict[str, Any], column: str) -> str:
    mean, std = entry.get(f"{column}_mean"), entry.get(f"{column}_std")
    if mean is None:
        return "–"
    return f"{mean:.4f} +- {std:.4f}" if std is not None else f"{mean:.4f}"


def _mean(entry: dict[str, Any], column: str, spec: str) -> str:
    value = entry.get(f"{column}_mean")
    return spec.format(value) if value is not None else "–"
