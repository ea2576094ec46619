"""Calibration, conformal prediction sets and abstention of `nlp-transfer train`, measured on real data.

    python scripts/benchmark_calibration.py                    # every run below: about 45 min on 2 CPU cores
    python scripts/benchmark_calibration.py --dry-run          # print the commands, run nothing
    python scripts/benchmark_calibration.py --only sst2 --seeds 0 --rows 64 \\
        --extra-train-args="--max-steps 2" --work-dir /tmp/calib_smoke --output /tmp/calib_smoke_out  # smoke run

Every run is `nlp-transfer train` at its defaults (strategy full, the bundled MiniLM, --calibration
temperature) in a process of its own, one output folder per run under WORK_DIR/runs. Without a validation
file the package carves 10% of the training file (seeded by --seed) as validation: the temperature is fitted
on those rows and the conformal quantiles come from them, so their number (200 of 2,000; 7 of 64) is part of
what is measured. The runs, per dataset folder of --data-root:

  sst2        2,000 rows of train.csv, each seed; test: test.csv (GLUE's dev set, 872 sentences)
  ag_news     64 and 256 rows of train.csv, each seed; test: test.csv (7,600), or a fixed sample of it
              (--ag-news-test-rows N: numpy default_rng(0), as benchmark_fewshot.py --max-test N)
  stsb        2,000 pairs of train.csv, each seed, as regression (--task regression, sentence1 + sentence2 as
              a text pair); test: test.csv (GLUE's dev set, 1,500 pairs)
  goemotions  train.csv, validation.csv and test.csv as given, multi-label (--label-separator ';'); first
              seed only

Draws: the rows `nlp-transfer compare` trains on for that size and seed when validation comes from a file of
its own (configs/grids/sst2.yaml, docs/benchmarks/sst2_grid), i.e. `--max-train-samples N --train-sample
stratified --seed S` applied to the whole train.csv: stratified by label for single-label data (each label
keeps its share; numpy default_rng(seed)), a plain seeded sample for regression, kept in file order. The
SST-2 draws are thus the training rows of sst2_grid's full/2000 cells. Each draw is written to
WORK_DIR/data (never into the repository) and given as --train-file, so the package carves validation from
the 2,000 rows, not from all of train.csv.

Resumable: a run whose folder holds a complete metrics.json made by this script with the same command is
read, not retrained (said on stderr; --force retrains). The command of each finished run is kept beside its
folder (RUN.command.json); a folder the script did not make is never replaced, and one it made is replaced
(--overwrite-output-dir true) only when its command changed or --force is given. Training logs go to
WORK_DIR/logs; progress (run n of N, elapsed time) goes to stderr.

Output: OUTPUT/results.json (one entry per run of this invocation: dataset, rows, seed, command, metrics.json's
calibration, conformal and abstention sections, test metrics, training time) and OUTPUT/summary.md: (a) test
ECE / log loss / Brier before -> after the temperature, accuracy before and after (must be equal); (b) the
empirical test coverage of the conformal sets (intervals for STS-B) at 0.8 and 0.9 and their mean size, and
whether it lies in [target - 0.02, target + 0.03]; (c) abstention on SST-2; with the command line, the
machine and the date. A section absent from a metrics.json (a folder trained before it existed) reads
"missing"; one that does not apply (calibration of a regression) reads "n/a".
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.metadata
import io
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.8, 0.9)
"""The coverage targets reported; metrics.json's conformal.test has these."""
BAND = (0.02, 0.03)
"""An empirical coverage within [target - 0.02, target + 0.03] counts as on target."""
MISSING = "missing"
NOT_APPLICABLE = "n/a"
SECTIONS = ("calibration", "conformal", "abstention")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset folder: the training sizes drawn (None: train.csv as given) and its own train options."""

    name: str
    sizes: tuple[int | None, ...]
    flags: tuple[str, ...] = ()
    stratified: bool = True
    own_validation: bool = False
    first_seed_only: bool = False


DATASETS = {
    "sst2": DatasetSpec("sst2", (2000,)),
    "ag_news": DatasetSpec("ag_news", (64, 256)),
    "stsb": DatasetSpec(
        "stsb",
        (2000,),
        ("--task", "regression", "--text-column", "sentence1", "--text-pair-column", "sentence2"),
        stratified=False,
    ),
    "goemotions": DatasetSpec(
        "goemotions", (None,), ("--label-separator", ";"), own_validation=True, first_seed_only=True
    ),
}


@dataclass(frozen=True)
class Draw:
    """A file written before a run: `size` rows of `source`, drawn with `seed`, kept in file order."""

    source: Path
    target: Path
    size: int
    seed: int
    stratified: bool

    def describe(self) -> str:
        how = "stratified by label" if self.stratified else "at random"
        return f"{self.target} = {self.size:,} rows of {self.source}, {how}, seed {self.seed}"


@dataclass
class Run:
    """One `nlp-transfer train` run: its coordinates, folder, the files it needs written, and its arguments."""

    dataset: str
    rows: int | None
    seed: int
    folder: Path
    draws: list[Draw]
    argv: list[str]
    """Everything after the program (`train ...`), without --overwrite-output-dir."""

    @property
    def title(self) -> str:
        return f"{self.dataset} {_rows_text(self.rows)} rows, seed {self.seed}"

    @property
    def command_file(self) -> Path:
        """Beside the folder, never in it: the package refuses to replace a folder holding files it did not write."""
        return self.folder.with_name(self.folder.name + ".command.json")


# ------------------------------------------------------------------------------------------------ the plan


def plan_runs(args: argparse.Namespace) -> list[Run]:
    """Every run of the benchmark, in order; reads nothing but the row count of files used as given."""
    runs = []
    for name in args.only:
        spec, source = DATASETS[name], args.data_root / name
        test, test_draws = _test_file(spec, source, args)
        sizes = spec.sizes if spec.sizes == (None,) or args.rows is None else (args.rows,)
        seeds = args.seeds[:1] if spec.first_seed_only else args.seeds
        for size in sizes:
            for seed in seeds:
                runs.append(_plan_run(spec, source, size, seed, test, test_draws, args))
    return runs


def _test_file(spec: DatasetSpec, source: Path, args: argparse.Namespace) -> tuple[Path, list[Draw]]:
    if spec.name != "ag_news" or not args.ag_news_test_rows:
        return source / "test.csv", []
    target = args.work_dir / "data" / spec.name / f"test_n{args.ag_news_test_rows}_s0.csv"
    return target, [Draw(source / "test.csv", target, args.ag_news_test_rows, 0, stratified=False)]


def _plan_run(
    spec: DatasetSpec, source: Path, size: int | None, seed: int, test: Path, test_draws: list[Draw], args: Any
) -> Run:
    label = "all" if size is None else f"n{size}"
    folder = args.work_dir / "runs" / spec.name / f"{label}_s{seed}"
    draws = list(test_draws)
    if size is None:
        train, rows = source / "train.csv", count_rows(source / "train.csv")
    else:
        train, rows = args.work_dir / "data" / spec.name / f"train_{label}_s{seed}.csv", size
        draws.append(Draw(source / "train.csv", train, size, seed, spec.stratified))
    argv = ["train", "--train-file", str(train)]
    if spec.own_validation:
        argv += ["--validation-file", str(source / "validation.csv")]
    argv += ["--test-file", str(test), *spec.flags, "--seed", str(seed), "--output-dir", str(folder)]
    argv += ["--disable-tqdm", "true", *args.extra_train_args]
    return Run(spec.name, rows, seed, folder, draws, argv)


# ------------------------------------------------------------------------------------------------ the draws


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def count_rows(path: Path) -> int | None:
    return len(read_rows(path)[1]) if path.is_file() else None


def label_order(values: list[str]) -> list[str]:
    """Class names in the package's id order: numeric for integer labels, else sorted as text."""
    unique = set(values)
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)


def draw_indices(labels: list[str], size: int, seed: int, stratified: bool) -> list[int]:
    """The row numbers `--max-train-samples size [--train-sample stratified] --seed seed` keeps, in file order:
    the package's own draw, over the labels encoded in its id order."""
    from nlp_transfer.data.splits import random_rows, stratified_rows  # imported here: --help stays fast

    if size >= len(labels):
        return list(range(len(labels)))
    if not stratified:
        return random_rows(len(labels), size, seed)
    ids = {name: i for i, name in enumerate(label_order(labels))}
    return stratified_rows(np.asarray([ids[value] for value in labels]), size, seed)


def write_draw(draw: Draw) -> None:
    """Write the draw's file, unless the same content is there already."""
    columns, rows = read_rows(draw.source)
    label = "label" if "label" in columns else columns[-1]
    keep = draw_indices([row[label] for row in rows], draw.size, draw.seed, draw.stratified)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows[i] for i in keep)
    if draw.target.is_file() and draw.target.read_text(encoding="utf-8") == text.getvalue():
        return
    draw.target.parent.mkdir(parents=True, exist_ok=True)
    with open(draw.target, "w", newline="", encoding="utf-8") as handle:
        handle.write(text.getvalue())


# ------------------------------------------------------------------------------------------------ running


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def complete_metrics(folder: Path) -> dict[str, Any] | None:
    """metrics.json when it holds what a finished run with a test file writes, else None."""
    metrics = read_json(folder / "metrics.json")
    if isinstance(metrics, dict) and isinstance(metrics.get("test"), dict) and metrics["test"]:
        return metrics if metrics.get("train_runtime_s") is not None else None
    return None


def decide(run: Run, force: bool) -> tuple[str, str]:
    """('train' | 'retrain' | 'skip' | 'refuse', why): what to do with the run's folder."""
    if not run.folder.exists():
        return "train", "new folder"
    recorded = read_json(run.command_file)
    if not isinstance(recorded, dict):
        return "refuse", f"{run.folder} exists but this script did not make it ({run.command_file} is missing)"
    if recorded.get("argv") != run.argv:
        return "retrain", "its folder was made by another command"
    if force:
        return "retrain", "--force"
    if complete_metrics(run.folder) is None:
        return "retrain", "its metrics.json is not complete"
    return "skip", "complete metrics.json for the same command"


def program() -> list[str]:
    """The `nlp-transfer` console script of this interpreter's environment, else `python -m nlp_transfer.cli`."""
    beside = Path(sys.executable).with_name("nlp-transfer")
    found = str(beside) if beside.is_file() else shutil.which("nlp-transfer")
    return [found] if found else [sys.executable, "-m", "nlp_transfer.cli"]


def shown(argv: list[str]) -> str:
    return shlex.join(["nlp-transfer", *argv])


def train(run: Run, overwrite: bool, log: Path) -> int:
    """Run `nlp-transfer train` with its output in `log`; record the command beside the folder on success."""
    for draw in run.draws:
        write_draw(draw)
    env = {**os.environ}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    log.parent.mkdir(parents=True, exist_ok=True)
    extra = ["--overwrite-output-dir", "true"] if overwrite else []
    with open(log, "w", encoding="utf-8") as handle:
        code = subprocess.run([*program(), *run.argv, *extra], stdout=handle, stderr=subprocess.STDOUT, env=env)
    if code.returncode == 0:
        record = {"argv": run.argv, "finished": _now()}
        run.command_file.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return code.returncode


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Progress:
    """'[n/N h:mm:ss] message' lines on stderr."""

    def __init__(self, total: int) -> None:
        self.total, self.started = total, time.monotonic()

    def say(self, index: int, message: str) -> None:
        elapsed = datetime.timedelta(seconds=int(time.monotonic() - self.started))
        print(f"[{index}/{self.total} {elapsed}] {message}", file=sys.stderr, flush=True)


def run_all(runs: list[Run], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or reuse) every run; stop at the first failure unless --keep-going. One entry per run reached."""
    progress, entries = Progress(len(runs)), []
    for index, run in enumerate(runs, start=1):
        action, why = decide(run, args.force)
        command = shown(run.argv + (["--overwrite-output-dir", "true"] if action == "retrain" else []))
        if action == "skip":
            progress.say(index, f"{run.title}: skipped, {why} in {run.folder}")
            entries.append(result_entry(run, "reused", command, complete_metrics(run.folder), None))
            continue
        if action == "refuse":
            progress.say(index, f"{run.title}: FAILED, {why}; choose another --work-dir or move it away")
            entries.append(result_entry(run, "failed", command, None, None, error=why))
        else:
            log = args.work_dir / "logs" / run.dataset / f"{run.folder.name}.log"
            progress.say(index, f"{run.title}: training ({why}) into {run.folder}, log {log}")
            started = time.monotonic()
            code = train(run, action == "retrain", log)
            wall = time.monotonic() - started
            status = "trained" if code == 0 else "failed"
            metrics = complete_metrics(run.folder) if code == 0 else None
            error = None if code == 0 else f"exit status {code}; the end of {log}:\n{_log_tail(log)}"
            entries.append(result_entry(run, status, command, metrics, wall, error=error))
            progress.say(index, f"{run.title}: {status} in {wall:.0f} s{_headline(entries[-1])}")
            if error:
                print(error, file=sys.stderr)
        if entries[-1]["status"] == "failed" and not args.keep_going:
            print("Stopped at the first failure (--keep-going goes on).", file=sys.stderr)
            break
    return entries


def _headline(entry: dict[str, Any]) -> str:
    primary = entry.get("test_primary") or {}
    return "".join(f", test {name} {_num(value, 4)}" for name, value in primary.items())


# ------------------------------------------------------------------------------------------------ results


def result_entry(
    run: Run,
    status: str,
    command: str,
    metrics: dict[str, Any] | None,
    wall_s: float | None,
    error: str | None = None,
) -> dict[str, Any]:
    """results.json's entry for a run: what metrics.json says, with absent sections named 'missing'."""
    metrics = metrics or {}
    test = metrics.get("test") or {}
    task, primary = metrics.get("task"), metrics.get("primary_metric")
    entry: dict[str, Any] = {
        "dataset": run.dataset,
        "rows": run.rows,
        "seed": run.seed,
        "status": status,
        "folder": str(run.folder),
        "command": command,
        "task": task,
        "num_examples": metrics.get("num_examples"),
        "test_accuracy": test.get("accuracy", test.get("subset_accuracy")),
        "test_primary": {primary: test.get(primary)} if primary else {},
        "train_runtime_s": metrics.get("train_runtime_s"),
        "wall_s": None if wall_s is None else round(wall_s, 1),
        "nlp_transfer_version": metrics.get("nlp_transfer_version"),
    }
    for section in SECTIONS:
        applies = not (task == "regression" and section != "conformal")
        entry[section] = metrics.get(section, MISSING if applies or not metrics else NOT_APPLICABLE)
    if error:
        entry["error"] = error
    return entry


def dig(value: Any, *keys: str) -> Any:
    """value[k1][k2]..., or None where a level is missing or not a dict."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def at_level(mapping: Any, level: float) -> Any:
    """The entry of `mapping` keyed by `level` however it is written ('0.8', '0.80')."""
    if not isinstance(mapping, dict):
        return None
    for key, value in mapping.items():
        try:
            if abs(float(key) - level) < 1e-9:
                return value
        except ValueError:
            continue
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _num(value: Any, digits: int = 3) -> str:
    """A figure to `digits` places (rounded to 6 first, as metrics.json's sections are); a note as it is."""
    if isinstance(value, str):
        return value
    return f"{round(value, 6):.{digits}f}" if _is_number(value) else MISSING


def _mean(values: list[Any]) -> float | str:
    """The mean over seeds, or '-' when a seed has no figure (its own row says why)."""
    return statistics.mean(values) if values and all(_is_number(v) for v in values) else "-"


def _rows_text(rows: Any) -> str:
    return f"{rows:,}" if isinstance(rows, int) else "?"


def groups(entries: list[dict[str, Any]]) -> dict[tuple[str, int | None], list[dict[str, Any]]]:
    """Entries by (dataset, rows), in run order."""
    grouped: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for entry in entries:
        grouped.setdefault((entry["dataset"], entry["rows"]), []).append(entry)
    return grouped


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, as nlp_transfer.tables.markdown_table writes one (not imported: it would load torch)."""
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


# --- (a) calibration

CALIBRATION_KEYS = ("ece", "log_loss", "brier")


def calibration_numbers(entry: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run's calibration section (None where missing); a multi-label temperature as its median."""
    section = entry.get("calibration")
    before, after = dig(section, "test", "before") or {}, dig(section, "test", "after") or {}
    accuracy = "accuracy" if "accuracy" in before or "accuracy" in after else "subset_accuracy"
    temperature = dig(section, "temperature")
    if dig(section, "method") == "none":  # the run fitted no temperature (too few held-out rows): say why
        temperature = f"none: {dig(section, 'reason') or 'not fitted'}"
    if isinstance(temperature, dict):
        temperature = _median([v for v in temperature.values() if _is_number(v)])
    numbers = {"temperature": temperature, "fitted_rows": dig(section, "fitted_on", "rows")}
    for key in CALIBRATION_KEYS:
        numbers[f"{key}_before"], numbers[f"{key}_after"] = before.get(key), after.get(key)
    numbers["accuracy_before"], numbers["accuracy_after"] = before.get(accuracy), after.get(accuracy)
    return numbers


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _same(before: Any, after: Any) -> str:
    if not (_is_number(before) and _is_number(after)):
        return MISSING
    return "yes" if abs(before - after) < 1e-9 else f"NO ({after - before:+.4f})"


def _calibration_row(name: str, numbers: dict[str, Any], same: str) -> list[str]:
    temperature = numbers["temperature"]
    shown = temperature if isinstance(temperature, str) else _num(temperature, 2)
    cells = [name, shown, _num(numbers["fitted_rows"], 0)]
    for key in CALIBRATION_KEYS:
        cells.append(f"{_num(numbers[f'{key}_before'], 4)} -> {_num(numbers[f'{key}_after'], 4)}")
    return [*cells, _num(numbers["accuracy_before"], 4), _num(numbers["accuracy_after"], 4), same]


def calibration_table(entries: list[dict[str, Any]]) -> str:
    headers = ["run", "temperature", "fitted on (rows)", "test ECE", "test log loss", "test Brier"]
    headers += ["accuracy before", "accuracy after", "equal"]
    rows = []
    for (dataset, size), members in groups(entries).items():
        if all(m.get("task") == "regression" or m["status"] == "failed" for m in members):
            continue
        numbers = [calibration_numbers(m) for m in members]
        verdicts = [_same(n["accuracy_before"], n["accuracy_after"]) for n in numbers]
        for member, figures, same in zip(members, numbers, verdicts):
            rows.append(_calibration_row(f"{dataset} {_rows_text(size)}, seed {member['seed']}", figures, same))
        if len(members) > 1:
            mean = {key: _mean([n[key] for n in numbers if not isinstance(n[key], str)]) for key in numbers[0]}
            equal = f"{verdicts.count('yes')}/{len(verdicts)} seeds"
            rows.append(_calibration_row(f"**{dataset} {_rows_text(size)}, mean**", mean, equal))
    return table(headers, rows)


# --- (b) conformal


def conformal_numbers(entry: dict[str, Any], level: float) -> dict[str, Any]:
    section = entry.get("conformal")
    report = at_level(dig(section, "test"), level) or {}
    size = report.get("mean_set_size", report.get("mean_interval_width"))
    quantile = at_level(dig(section, "quantiles"), level)
    if quantile is None and "quantile" in report and report["quantile"] is None:
        quantile = "none: too few rows"  # saved as null: ceil((n + 1) * target) > n, every set is every label
    return {
        "rows": dig(section, "rows"),
        "quantile": quantile,
        "coverage": report.get("coverage"),
        "size": size,
    }


def in_band(coverage: Any, level: float) -> str:
    if not _is_number(coverage):
        return MISSING
    return "yes" if level - BAND[0] - 1e-9 <= coverage <= level + BAND[1] + 1e-9 else "no"


def _conformal_row(name: str, level: float, numbers: dict[str, Any], verdict: str) -> list[str]:
    return [
        name,
        f"{level:.1f}",
        _num(numbers["rows"], 0),
        _num(numbers["quantile"], 4),
        _num(numbers["coverage"], 4),
        verdict,
        _num(numbers["size"], 3),
    ]


def conformal_table(entries: list[dict[str, Any]]) -> str:
    headers = ["run", "target", "held-out rows", "quantile", "test coverage", "in band", "mean set size / width"]
    rows = []
    for (dataset, size), members in groups(entries).items():
        members = [m for m in members if m["status"] != "failed"]
        for level in LEVELS:
            numbers = [conformal_numbers(m, level) for m in members]
            verdicts = [in_band(n["coverage"], level) for n in numbers]
            for member, figures, verdict in zip(members, numbers, verdicts):
                name = f"{dataset} {_rows_text(size)}, seed {member['seed']}"
                rows.append(_conformal_row(name, level, figures, verdict))
            if len(members) > 1:
                mean = {key: _mean([n[key] for n in numbers if not isinstance(n[key], str)]) for key in numbers[0]}
                verdict = f"{in_band(mean['coverage'], level)} ({verdicts.count('yes')}/{len(verdicts)} seeds)"
                rows.append(_conformal_row(f"**{dataset} {_rows_text(size)}, mean**", level, mean, verdict))
    return table(headers, rows)


# --- (c) abstention


def abstention_numbers(entry: dict[str, Any]) -> dict[str, Any]:
    section = entry.get("abstention")
    return {
        "all": at_level(dig(section, "accuracy_at"), 1.0),
        "eighty": at_level(dig(section, "accuracy_at"), 0.8),
        "threshold": at_level(dig(section, "confidence_at"), 0.8),
        "aurc": dig(section, "aurc"),
    }


def _abstention_row(name: str, numbers: dict[str, Any]) -> list[str]:
    return [name, *(_num(numbers[key], 4) for key in ("all", "eighty", "threshold", "aurc"))]


def abstention_table(entries: list[dict[str, Any]], dataset: str = "sst2") -> str:
    headers = ["run", "accuracy, all answered", "accuracy, 80% answered", "confidence threshold for 80%", "AURC"]
    rows = []
    for (name, size), members in groups(entries).items():
        members = [m for m in members if m["status"] != "failed"]
        if name != dataset or not members:
            continue
        numbers = [abstention_numbers(m) for m in members]
        for member, figures in zip(members, numbers):
            rows.append(_abstention_row(f"{name} {_rows_text(size)}, seed {member['seed']}", figures))
        if len(members) > 1:
            mean = {key: _mean([n[key] for n in numbers if not isinstance(n[key], str)]) for key in numbers[0]}
            rows.append(_abstention_row(f"**{name} {_rows_text(size)}, mean**", mean))
    return table(headers, rows)


def runs_table(entries: list[dict[str, Any]]) -> str:
    headers = ["run", "status", "train / validation / test rows", "test primary metric", "train time (s)"]
    rows = []
    for entry in entries:
        counts = entry.get("num_examples") or {}
        split_rows = " / ".join(_rows_text(counts.get(s)) for s in ("train", "validation", "test"))
        primary = ", ".join(f"{name} {_num(value, 4)}" for name, value in entry["test_primary"].items())
        name = f"{entry['dataset']} {_rows_text(entry['rows'])}, seed {entry['seed']}"
        rows.append([name, entry["status"], split_rows, primary or MISSING, _num(entry["train_runtime_s"], 0)])
    return table(headers, rows)


# ------------------------------------------------------------------------------------------------ the report


def machine() -> dict[str, Any]:
    """nproc, the CPU model, torch's and nlp-transfer's versions, and the repository's commit."""
    cpu = "unknown"
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": cores,
        "cpu": cpu,
        "torch": _version("torch"),
        "nlp_transfer": _version("nlp-transfer"),
        "git": _git_commit(),
    }


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO_ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + (" with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def summary_markdown(entries: list[dict[str, Any]], context: dict[str, Any]) -> str:
    host = context["machine"]
    low, high = BAND
    parts = [
        "# Calibration, conformal prediction and abstention: benchmark",
        f"Produced by `{context['command']}` (from {context['cwd']}), {context['date']}.",
        f"Machine: {host['nproc']} cores (nproc), {host['cpu']}; torch {host['torch']}, "
        f"nlp-transfer {host['nlp_transfer']} (git {host['git']}).",
        "## Runs",
        runs_table(entries),
        "## (a) Calibration: the test split before -> after the temperature",
        "Fitted on the validation rows (carved from the training file unless the dataset has its own). Multi-label: "
        "one temperature per label, shown as their median; ECE is the mean over labels and accuracy the subset "
        "accuracy. A temperature never changes a decision, so accuracy before and after must be equal.",
        calibration_table(entries),
        "## (b) Conformal prediction: empirical test coverage at each target",
        f"Quantiles from the held-out (validation) rows. In band: coverage within [target - {low}, target + {high}]. "
        "Size: the mean number of labels in a set (classification) or the mean interval width (STS-B, score "
        "0 to 5). Quantile 'none: too few rows': ceil((rows + 1) x target) > rows, so every set holds every label.",
        conformal_table(entries),
        "## (c) Abstention on SST-2: answer only the most confident texts",
        abstention_table(entries),
    ]
    return "\n\n".join(parts) + "\n"


def write_outputs(entries: list[dict[str, Any]], output: Path) -> None:
    context = {
        "command": shlex.join(["python", sys.argv[0], *sys.argv[1:]]),
        "cwd": os.getcwd(),
        "date": _now(),
        "machine": machine(),
    }
    output.mkdir(parents=True, exist_ok=True)
    results = {**context, "runs": entries}
    (output / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (output / "summary.md").write_text(summary_markdown(entries, context), encoding="utf-8")
    print(f"Wrote {output / 'results.json'} and {output / 'summary.md'}", file=sys.stderr)


def dry_run(runs: list[Run], force: bool) -> None:
    """Print each run's draws and command (with what a real run would do with its folder); touch nothing."""
    for index, run in enumerate(runs, start=1):
        action, why = decide(run, force)
        print(f"# [{index}/{len(runs)}] {run.title}: {action} ({why})")
        for draw in run.draws:
            print(f"#   writes {draw.describe()}")
        for path in (Path(v) for v in run.argv if v.endswith(".csv")):
            if not path.is_file() and path not in {d.target for d in run.draws}:
                print(f"#   WARNING: {path} does not exist")
        print(shown(run.argv + (["--overwrite-output-dir", "true"] if action == "retrain" else [])))


# ------------------------------------------------------------------------------------------------ options


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are comma-separated integers, e.g. 0,1,2 (not {text!r})") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def _datasets(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in DATASETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose among {','.join(DATASETS)} (not {text!r})")
    return [name for name in DATASETS if name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.path.relpath(REPO_ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--only", type=_datasets, default=list(DATASETS), help="Comma-separated datasets to run (default: all four)."
    )
    parser.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="Comma-separated seeds (default: 0,1,2).")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(default_data),
        help="Folder holding sst2/, ag_news/, stsb/, goemotions/ (default: ../shared/data from the repository root).",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("runs/calibration_benchmark"),
        help="Folder for the drawn data files, the run folders and their logs; git-ignored under runs/ "
        "(default: runs/calibration_benchmark).",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("docs/benchmarks/calibration"),
        help="Folder for results.json and summary.md (default: docs/benchmarks/calibration).",
    )
    parser.add_argument("--dry-run", action="store_true", help="Print the draws and commands; write and run nothing.")
    parser.add_argument("--keep-going", action="store_true", help="After a failed run, go on with the next one.")
    parser.add_argument("--force", action="store_true", help="Retrain runs whose folders are already complete.")
    parser.add_argument(
        "--rows",
        type=int,
        help="Draw this many training rows instead of each dataset's sizes (AG News: one size), e.g. 64 for a "
        "smoke run; GoEmotions keeps its files as given.",
    )
    parser.add_argument(
        "--ag-news-test-rows",
        type=int,
        default=0,
        help="Score AG News on a fixed sample of this many test rows (seed 0), written once into the work dir "
        "(default 0: all 7,600, about 15 s of prediction per run).",
    )
    parser.add_argument(
        "--extra-train-args",
        type=shlex.split,
        default=[],
        help='More `nlp-transfer train` options for every run, as one string: --extra-train-args="--max-steps 2" '
        "(with =, so that a value starting with -- is not read as an option of this script).",
    )
    return parser


def main() -> int:
    args = build_parser().parse_args()
    runs = plan_runs(args)
    if args.dry_run:
        dry_run(runs, args.force)
        return 0
    missing = sorted({str(d.source) for run in runs for d in run.draws if not d.source.is_file()})
    if missing:
        print(f"Missing data files: {', '.join(missing)} (see --data-root).", file=sys.stderr)
        return 2
    entries = run_all(runs, args)
    write_outputs(entries, args.output)
    failed = [entry for entry in entries if entry["status"] == "failed"]
    return 1 if failed or len(entries) < len(runs) else 0


if __name__ == "__main__":
    sys.exit(main())
