"""What transfer saves, from a grid's results: data-reduction factors, iteration reduction, a recommendation per size.

Pure arithmetic on `report.aggregate`'s entries and each run's learning curve, so that every figure can be
checked by hand. Definitions (also in README.md):

- data-reduction factor of a strategy at size N: the smallest scratch size whose mean reaches the strategy's
  mean at N, divided by N; "more than X" (X = the largest scratch size / N) when no scratch size gets there;
  "unknown" when that largest size is below N (scratch never had as much data).
- steps to target: per run, the first optimizer step at which the validation primary metric reaches the target
  (the best final mean among the strategies at that size and axes, less (1 - TARGET_FRACTION) x its absolute
  value; plus, for a lower-is-better metric); the mean over the seeds that reached it. Iteration reduction =
  1 - steps / scratch's steps; "scratch never reached it" when so. Where the runs record their batch size the
  ratio is of training examples (steps x batch size): the same as the step ratio at equal batch sizes, and still
  fair when scratch runs at a larger batch than transfer (fewer, larger steps).
- iteration reduction against scratch's best: the same ratio, with the target at TARGET_FRACTION of scratch's best
  final mean at any size (at equal data scratch seldom reaches transfer's score, so the per-size figure is mostly
  "scratch never reached it"): how many fewer steps (examples) a strategy at N rows needs to reach what scratch
  reached at its best size (usually its largest), against scratch's own steps to it there.
- recommendation: the best strategy by mean, and whether its lead over the runner-up exceeds the seed spread
  (the larger of the two standard deviations).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from typing import Any

BASELINE = "scratch"
TARGET_FRACTION = 0.95


@dataclass(frozen=True)
class Scores:
    """Where the figures come from: the split the means are read from and the primary metric's direction."""

    split: str
    """'test' when every run was scored on a test split, else 'eval' (validation)."""
    metric: str
    greater_is_better: bool = True

    def column(self, split: str | None = None) -> str:
        return f"{split or self.split}_{self.metric}"

    def reaches(self, value: float, target: float) -> bool:
        return value >= target if self.greater_is_better else value <= target

    def target(self, best: float, fraction: float) -> float:
        """`fraction` of the way to `best`, measured from 0 (so a metric at or below 0, like MCC, works too)."""
        margin = (1 - fraction) * abs(best)
        return best - margin if self.greater_is_better else best + margin


def numeric_size(entry: dict[str, Any]) -> float | None:
    """The rows a cell trained on: the mean of the runs' train_rows, or the requested size."""
    rows = entry.get("train_rows_mean")
    if rows is not None:
        return float(rows)
    size = entry.get("train_size")
    return float(size) if isinstance(size, int) else None


def _group(entry: dict[str, Any], axis_names: list[str]) -> str:
    return json.dumps([entry.get(name) for name in axis_names], default=str)


def data_reduction(summary: list[dict[str, Any]], scores: Scores, axis_names: list[str]) -> dict[int, str]:
    """{index of a transfer entry in `summary`: its data-reduction factor as text}; empty without scratch."""
    column = f"{scores.column()}_mean"
    scratch: dict[str, list[tuple[float, float]]] = {}
    for entry in summary:
        size = numeric_size(entry)
        if entry["strategy"] == BASELINE and size is not None and entry.get(column) is not None:
            scratch.setdefault(_group(entry, axis_names), []).append((size, entry[column]))
    factors = {}
    for index, entry in enumerate(summary):
        baseline = sorted(scratch.get(_group(entry, axis_names), []))
        size, mean = numeric_size(entry), entry.get(column)
        if entry["strategy"] == BASELINE or not baseline or not size or mean is None:
            continue
        reached = [scratch_size for scratch_size, value in baseline if scores.reaches(value, mean)]
        largest = baseline[-1][0]
        if reached:
            factors[index] = f"{reached[0] / size:.3g}x"
        elif largest < size:  # a bound below 1x says nothing: scratch was not given as much data
            factors[index] = f"unknown (scratch ran up to {largest:g} rows)"
        else:
            factors[index] = f"more than {largest / size:.3g}x"
    return factors


def steps_to_reach(curve: list[dict[str, float]] | None, target: float, scores: Scores) -> float | None:
    """The first step of a learning curve at which the metric reaches `target`; None if it never does."""
    for point in curve or []:
        if scores.reaches(point["value"], target):
            return point["step"]
    return None


def iteration_reduction(
    summary: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    curves: dict[str, list[dict[str, float]] | None],
    scores: Scores,
    axis_names: list[str],
    fraction: float = TARGET_FRACTION,
) -> dict[int, dict[str, Any]]:
    """{index in `summary`: target, steps_to_target (mean over the seeds that reached it), seeds_reached and
    iteration_reduction (text, against scratch at the same size and axes)}.

    The target is set on validation means (the curves are validation scores), per size and axes.
    """
    column = f"{scores.column('eval')}_mean"
    best: dict[tuple, float] = {}
    for entry in summary:
        key = (entry["train_size"], _group(entry, axis_names))
        value = entry.get(column)
        if value is not None and (key not in best or scores.reaches(value, best[key])):
            best[key] = value
    figures: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(summary):
        key = (entry["train_size"], _group(entry, axis_names))
        if key not in best:
            continue
        target = scores.target(best[key], fraction)
        figures[index] = {"target": target, **_steps_to(target, entry, rows, curves, scores, axis_names)}
    for index, entry in enumerate(summary):
        if index not in figures or entry["strategy"] == BASELINE:
            continue
        baseline = next(
            (
                figures.get(other_index)
                for other_index, other in enumerate(summary)
                if other["strategy"] == BASELINE
                and other["train_size"] == entry["train_size"]
                and _group(other, axis_names) == _group(entry, axis_names)
            ),
            None,
        )
        figures[index]["iteration_reduction"] = _reduction_text(figures[index], baseline)
    return figures


def reduction_against_best_scratch(
    summary: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    curves: dict[str, list[dict[str, float]] | None],
    scores: Scores,
    axis_names: list[str],
    fraction: float = TARGET_FRACTION,
) -> dict[int, dict[str, Any]]:
    """{index of a transfer entry: scratch_target, steps_to_scratch_target, seeds_reached_scratch_target,
    iteration_reduction_vs_best_scratch}.

    At equal data scratch rarely reaches transfer's score, so the per-size iteration reduction is mostly "scratch
    never reached it". This figure asks the other way round: the target is `fraction` of scratch's best final
    validation mean at any size (its largest, usually), and each transfer entry's steps (examples) to reach it
    are set against what that best scratch entry took to reach the same target.
    """
    column = f"{scores.column('eval')}_mean"
    best: dict[str, dict[str, Any]] = {}  # group -> scratch's best entry
    for entry in summary:
        group = _group(entry, axis_names)
        if entry["strategy"] != BASELINE or entry.get(column) is None:
            continue
        if group not in best or _better_scratch(entry, best[group], column, scores):
            best[group] = entry
    targets = {group: scores.target(entry[column], fraction) for group, entry in best.items()}
    baselines = {
        group: _steps_to(targets[group], entry, rows, curves, scores, axis_names) for group, entry in best.items()
    }
    figures: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(summary):
        group = _group(entry, axis_names)
        if entry["strategy"] == BASELINE or group not in best:
            continue
        own = _steps_to(targets[group], entry, rows, curves, scores, axis_names)
        figures[index] = {
            "scratch_target": targets[group],
            "steps_to_scratch_target": own["steps_to_target"],
            "seeds_reached_scratch_target": own["seeds_reached"],
            "iteration_reduction_vs_best_scratch": _reduction_text(own, baselines[group]),
        }
    return figures


def _better_scratch(entry: dict[str, Any], incumbent: dict[str, Any], column: str, scores: Scores) -> bool:
    """A higher mean wins; at an equal mean the larger size (scratch stuck at chance at every size would otherwise
    be compared at its smallest, where its few steps make every strategy look slow)."""
    if entry[column] != incumbent[column]:
        return scores.reaches(entry[column], incumbent[column])
    return (numeric_size(entry) or 0) > (numeric_size(incumbent) or 0)


def _steps_to(
    target: float,
    entry: dict[str, Any],
    rows: list[dict[str, Any]],
    curves: dict[str, list[dict[str, float]] | None],
    scores: Scores,
    axis_names: list[str],
) -> dict[str, Any]:
    """An entry's steps and training examples (steps x batch size) to `target`, means over the seeds that got there."""
    members = [row for row in rows if _same_cell(row, entry, axis_names)]
    steps = [(steps_to_reach(curves.get(row["cell"]), target, scores), row.get("batch_size")) for row in members]
    reached = [(step, batch) for step, batch in steps if step is not None]
    examples = [step * batch for step, batch in reached if batch]
    return {
        "steps_to_target": statistics.mean(step for step, _ in reached) if reached else None,
        "examples_to_target": statistics.mean(examples) if examples and len(examples) == len(reached) else None,
        "seeds_reached": f"{len(reached)}/{len(members)}",
    }


def _same_cell(row: dict[str, Any], entry: dict[str, Any], axis_names: list[str]) -> bool:
    return all(row.get(name) == entry.get(name) for name in ("strategy", "train_size", *axis_names))


def _reduction_text(own: dict[str, Any], baseline: dict[str, Any] | None) -> str | None:
    if baseline is None:
        return None
    if baseline["steps_to_target"] is None:
        return "scratch never reached it"
    if own["steps_to_target"] is None:
        return "never reached it"
    if own["examples_to_target"] is not None and baseline["examples_to_target"] is not None:
        return _percent(1 - own["examples_to_target"] / baseline["examples_to_target"])
    return _percent(1 - own["steps_to_target"] / baseline["steps_to_target"])


def _percent(reduction: float) -> str:
    """Whole percent; from 99% up one decimal, rounded down, where rounding would print an impossible 100%."""
    if 0.99 <= reduction < 1:
        return f"{math.floor(reduction * 1000) / 10:.1f}%"
    return f"{reduction:.0%}"


def recommendations(summary: list[dict[str, Any]], scores: Scores, axis_names: list[str]) -> list[str]:
    """One line per size (and axes): the best strategy by mean, and whether its lead exceeds the seed spread."""
    column = scores.column()
    by_size: dict[tuple, list[dict[str, Any]]] = {}
    for entry in summary:
        if entry.get(f"{column}_mean") is not None:
            by_size.setdefault((entry["train_size"], _group(entry, axis_names)), []).append(entry)
    lines = []
    for (size, _), entries in by_size.items():
        ranked = sorted(entries, key=lambda entry: entry[f"{column}_mean"], reverse=scores.greater_is_better)
        where = ", ".join(f"{name}={ranked[0].get(name)}" for name in axis_names)
        head = f"{size} training rows{f' ({where})' if where else ''}: {ranked[0]['strategy']}"
        head += f" ({_figure(ranked[0], column)})"
        if len(ranked) == 1:
            lines.append(f"{head}, the only strategy.")
            continue
        lead = abs(ranked[0][f"{column}_mean"] - ranked[1][f"{column}_mean"])
        spreads = [entry.get(f"{column}_std") for entry in ranked[:2]]
        runner = f"{ranked[1]['strategy']} ({_figure(ranked[1], column)})"
        if any(spread is None for spread in spreads):
            lines.append(f"{head} leads {runner} by {lead:.4f}; one seed, so no spread to weigh it against.")
            continue
        spread = max(spreads)
        verdict = "more than" if lead > spread else "within"
        tail = "" if lead > spread else ": no clear winner"
        lines.append(f"{head} leads {runner} by {lead:.4f}, {verdict} the seed spread ({spread:.4f}){tail}.")
    return lines


def _figure(entry: dict[str, Any], column: str) -> str:
    std = entry.get(f"{column}_std")
    mean = entry[f"{column}_mean"]
    return f"{mean:.4f} +- {std:.4f}" if std is not None else f"{mean:.4f}"
