"""Text tables: the plain metric table of the CLI and the Markdown tables of the benchmark scripts.

A leaf module (it imports nothing from the package), so scripts and the CLI print tables the same way.
"""

from __future__ import annotations

from typing import Any


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: a header row, a `| --- |` rule, then one line per row (cells as given)."""
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def metrics_table(
    splits: dict[str, dict[str, Any]], primary: str, intervals: dict[str, dict[str, Any]] | None = None
) -> str:
    """A plain-text table: one row per metric (the primary first), one column per split.

    `splits` maps a column title to a split's metric dict; floats are shown, timings left out. `intervals`
    (metric -> {'lower', 'upper', 'confidence'}) adds a bracketed interval column. Metrics a split records
    as undefined are listed under the table with their reason.
    """
    names = [primary] + [
        name
        for name, value in next(iter(splits.values()), {}).items()
        if name != primary and isinstance(value, float) and not name.endswith(("runtime", "per_second"))
    ]
    width = max(len(name) for name in names) + 2
    header = f"{'metric':<{width}}" + "".join(f"{split:>12}" for split in splits) + _interval_title(intervals)
    lines = [header, "-" * len(header)]
    for name in names:
        cells = "".join(_cell(values.get(name)) for values in splits.values())
        row = f"{name + (' *' if name == primary else ''):<{width}}{cells}"
        if intervals and name in intervals:
            row += f"   [{intervals[name]['lower']:.4f}, {intervals[name]['upper']:.4f}]"
        lines.append(row)
    undefined = {name: reason for values in splits.values() for name, reason in values.get("undefined", {}).items()}
    lines.extend(f"{name}: undefined ({reason})" for name, reason in undefined.items())
    return "\n".join(lines)


def _interval_title(intervals: dict[str, dict[str, Any]] | None) -> str:
    """The interval column's title: its confidence level when every interval shares one."""
    if not intervals:
        return ""
    levels = {interval["confidence"] for interval in intervals.values()}
    return f"   {levels.pop():.0%} interval" if len(levels) == 1 else "   interval"


def _cell(value: Any) -> str:
    return f"{value:>12.4f}" if isinstance(value, float) else f"{'n/a':>12}"
