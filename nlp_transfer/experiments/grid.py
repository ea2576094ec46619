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

import hashlib
import json
from pathlib import Path
from typing import Any

from nlp_transfer.config.run import RunConfig, build_parser, load_config_file
from nlp_transfer.errors import UserInputError
from nlp_transfer.experiments.cells import ALL_ROWS, DEFAULT_SPLIT_SEED, PATH_OPTIONS, Grid, GridCell

GRID_KEYS = ("strategies", "train_sizes", "seeds", "output_dir", "split_seed", "keep_models")
CELL_OPTIONS = ("strategy", "max_train_samples", "train_sample", "split_seed", "seed", "output_dir", "resume")
"""Options each cell sets itself; a grid file that names them outside its axes is refused."""
NOT_IN_GRIDS = ("push_to_hub", "hub_model_id", "resume_from_checkpoint")
"""Options that make no sense for many runs at once (every cell would push to one repository)."""
# TrainingArguments options that take a list although argparse sees a str: a list is their value, not an axis.
LIST_OPTIONS = ("report_to", "fsdp", "optim_target_modules")


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
