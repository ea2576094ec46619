"""The grid's tables: `aggregate` (mean +- std over seeds), the derived figures of `savings`, and what
`write_report` writes (runs.csv, summary.csv / .json / .md, recommendations.json, the plots); `report_grid` writes
them from the cells finished so far."""

from __future__ import annotations

import csv
import json
import logging
import statistics
from pathlib import Path
from typing import Any

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.record import RECORD_SPLITS, is_finite_number
from nlp_transfer.experiments.cells import Grid, _short
from nlp_transfer.experiments.plots import plot_learning_curves, plot_metric_vs_parameters, plot_metric_vs_size
from nlp_transfer.experiments.results import _current_rows, learning_curves, split_keys
from nlp_transfer.experiments.savings import (
    TARGET_FRACTION,
    Scores,
    data_reduction,
    iteration_reduction,
    recommendations,
    reduction_against_best_scratch,
)
from nlp_transfer.tables import markdown_table

logger = logging.getLogger(__name__)

ITERATION_FIGURES = ("target", "steps_to_target", "examples_to_target", "seeds_reached", "iteration_reduction")
BEST_SCRATCH_FIGURES = (
    "scratch_target",
    "steps_to_scratch_target",
    "seeds_reached_scratch_target",
    "iteration_reduction_vs_best_scratch",
)


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


def report_grid(grid: Grid) -> list[dict[str, Any]]:
    """Tables and plots from the cells finished so far, training nothing (a long grid can be read while it
    runs, or after a kill); returns the rows."""
    keys = {cell.key for cell in grid.cells}
    rows = [row for row in _current_rows(grid) if row["cell"] in keys]
    if not rows:
        raise UserInputError(f"{grid.folder} has no finished cells of this grid yet: nothing to report.")
    write_report(grid.folder, rows, grid.axis_names, learning_curves(grid.folder, rows))
    return rows


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
