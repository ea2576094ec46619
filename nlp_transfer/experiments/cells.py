"""The grid's cells: `GridCell` (one run's coordinates and options), `Grid` (the expanded grid: its folder, cells
and extra axes) and `GridOutcome` (what a `run_grid` call did), with the names and defaults they share."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALL_ROWS = "all"
DEFAULT_SPLIT_SEED = 42
PATH_OPTIONS = ("train_file", "validation_file", "test_file", "model")


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


def _short(value: Any) -> str:
    """An axis value as a reader wants it in a name or a table: a path by its last part."""
    text = str(value)
    return Path(text).name if "/" in text else text
