"""Pictures of a grid (PNG, matplotlib's Agg backend): metric vs training-set size with the seed spread as a band,
metric vs trainable parameters, and validation learning curves (metric vs optimizer steps) of every run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nlp_transfer.evaluation.metrics.plots import pyplot
from nlp_transfer.evaluation.record import RECORD_SPLITS
from nlp_transfer.experiments.savings import Scores, numeric_size


def _series_name(entry: dict[str, Any], axis_names: list[str]) -> str:
    extra = ", ".join(f"{name}={entry.get(name)}" for name in axis_names)
    return f"{entry['strategy']} ({extra})" if extra else str(entry["strategy"])


def _split_title(scores: Scores, split: str | None = None) -> str:
    return f"{RECORD_SPLITS[split or scores.split]} {scores.metric}"


def plot_metric_vs_size(summary: list[dict[str, Any]], scores: Scores, axis_names: list[str], path: Path) -> Path:
    """Mean primary metric vs training rows (log x) per strategy, +- one standard deviation over seeds as a band."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    series = _series(summary, scores, axis_names, numeric_size)
    for name, points in series.items():
        points.sort()
        sizes, means, spreads = zip(*points, strict=True)
        line = axes.plot(sizes, means, marker="o", label=name)[0]
        low = [mean - spread for mean, spread in zip(means, spreads, strict=True)]
        high = [mean + spread for mean, spread in zip(means, spreads, strict=True)]
        axes.fill_between(sizes, low, high, color=line.get_color(), alpha=0.2)
    title = "Primary metric vs training-set size (band: +- 1 std over seeds)"
    _finish(axes, "training rows (log scale)", _split_title(scores), title, bool(series))
    return _save(figure, path, plt)


def plot_metric_vs_parameters(summary: list[dict[str, Any]], scores: Scores, axis_names: list[str], path: Path) -> Path:
    """Mean primary metric vs trainable parameters (log x), one marker series per strategy, error bars = std."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    series = _series(summary, scores, axis_names, lambda entry: entry.get("trainable_parameters_mean"))
    for name, points in series.items():
        parameters, means, spreads = zip(*points, strict=True)
        axes.errorbar(parameters, means, yerr=spreads, fmt="o", capsize=3, label=name)
    title = "Primary metric vs trainable parameters (one point per training-set size)"
    _finish(axes, "trainable parameters (log scale)", _split_title(scores), title, bool(series))
    return _save(figure, path, plt)


def _series(
    summary: list[dict[str, Any]], scores: Scores, axis_names: list[str], x_of: Callable[[dict[str, Any]], Any]
) -> dict[str, list[tuple[float, float, float]]]:
    """{strategy (and axes): [(x, mean, std)]} of the entries with an x and a mean of the primary metric."""
    column = scores.column()
    series: dict[str, list[tuple[float, float, float]]] = {}
    for entry in summary:
        x, mean = x_of(entry), entry.get(f"{column}_mean")
        if x and mean is not None:
            spread = entry.get(f"{column}_std") or 0.0
            series.setdefault(_series_name(entry, axis_names), []).append((x, mean, spread))
    return series


def _finish(axes: Any, x_label: str, y_label: str, title: str, legend: bool) -> None:
    axes.set_xscale("log")
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if legend:
        axes.legend(fontsize="small")


def plot_learning_curves(
    rows: list[dict[str, Any]],
    curves: dict[str, list[dict[str, float]] | None],
    scores: Scores,
    axis_names: list[str],
    path: Path,
) -> Path | None:
    """Validation primary metric vs optimizer steps, one panel per training-set size, one line per run."""
    sizes = list(dict.fromkeys(row["train_size"] for row in rows if curves.get(row["cell"])))
    if not sizes:
        return None
    plt = pyplot()
    figure, panels = plt.subplots(1, len(sizes), figsize=(4.5 * len(sizes), 4), squeeze=False, sharey=True)
    colours: dict[str, str] = {}
    for panel, size in zip(panels[0], sizes, strict=True):
        for row in rows:
            curve = curves.get(row["cell"])
            if row["train_size"] != size or not curve:
                continue
            name = _series_name(row, axis_names)
            first = name not in colours
            colour = colours.setdefault(name, f"C{len(colours) % 10}")
            steps = [point["step"] for point in curve]
            values = [point["value"] for point in curve]
            panel.plot(steps, values, color=colour, alpha=0.7, label=name if first else None)
        panel.set_title(f"{size} training rows")
        panel.set_xlabel("optimizer steps")
        panel.grid(alpha=0.3)
    panels[0][0].set_ylabel(_split_title(scores, "eval"))
    figure.legend(loc="lower center", ncol=min(len(colours), 5), fontsize="small")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(figure, path, plt)


def _save(figure: Any, path: Path, plt: Any) -> Path:
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
