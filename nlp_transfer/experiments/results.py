"""The grid's results on disk: the rows of runs.jsonl (what a row holds, reading them back for a resume, one row
per cell, appending a new one) and the learning curves of the metrics.json each cell keeps under cells/."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.experiments.cells import Grid, GridCell
from nlp_transfer.outputs import METRICS_FILE

logger = logging.getLogger(__name__)

RUNS_FILE = "runs.jsonl"
CELLS_FOLDER = "cells"
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


def learning_curves(folder: Path, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, float]] | None]:
    """Each finished cell's validation learning curve, from its kept metrics.json."""
    curves = {}
    for row in rows:
        path = folder / CELLS_FOLDER / row["cell"]
        curves[row["cell"]] = RunRecord.load(path).learning_curve if (path / METRICS_FILE).exists() else None
    return curves


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
