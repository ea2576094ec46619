"""Recalibration without retraining (`nlp-transfer calibrate`), cross-fitted on the two halves of SST-2's GLUE dev set.

    python scripts/benchmark_recalibration.py                  # the 3 folders below: about 10 min on 2 CPU cores
    python scripts/benchmark_recalibration.py --dry-run        # print the commands, run nothing
    python scripts/benchmark_recalibration.py --models runs/my_sst2 \\
        --work-dir /tmp/recal --output /tmp/recal_out          # any folders `nlp-transfer train` wrote for SST-2

Why: `nlp-transfer train` fits its temperature and conformal quantiles on validation rows carved from train.csv.
On SST-2 those are short phrases (median 7 words) while the test set, GLUE's dev set (872 sentences, median 19
words), holds whole sentences: the two are not exchangeable, and the test coverage of the prediction sets falls
short of its target (about 0.77 at 0.9). `nlp-transfer calibrate` refits both on labelled texts like the ones
the model will meet, without retraining. This script measures what that buys without ever scoring a folder on
the rows it was calibrated on.

How: DATA_ROOT/sst2/test.csv is shuffled with random.Random(SPLIT_SEED).shuffle (seed 0 unless --split-seed) and
cut in two: A, the first half (436 rows), and B, the rest (436), written as text,label CSVs into WORK_DIR/data.
For each folder of --models (default: the three SST-2 runs scripts/benchmark_calibration.py trains,
runs/calibration_benchmark/runs/sst2/n2000_s0 to _s2):

  as trained     nlp-transfer evaluate on A and on B with the folder as it is (its own temperature and quantiles)
  recalibrated   nlp-transfer calibrate on A, then evaluate that folder on B; calibrate on B, evaluate on A

Every evaluation runs at --coverage 0.8 and at 0.9 (evaluate takes one level per run), so each (folder, half)
is scored twice; the two runs' other metrics must agree (checked). Calibrated folders go to
WORK_DIR/calibrated/NAME_on_A (and _on_B), evaluation reports to WORK_DIR/evaluations/NAME, the commands' output
to WORK_DIR/logs/NAME. NAME is the folder's name (with its parent's where two given folders share one).

Resumable: beside each output (a calibrated folder or an evaluation report) the script keeps OUTPUT.command.json,
the command that made it and a fingerprint of its inputs (the model folder's files, the half's content). A
complete output with the same record is read, not recomputed (said on stderr); a changed command or input redoes
it, and what was computed from it; --force redoes everything. A calibrated folder without a record (not made by
this script) is never replaced.

Figures: per folder, both halves' figures are averaged. The halves have equal sizes, so the means of accuracy,
log loss, Brier, coverage, set size and the share of empty sets equal the figures of the 872 rows pooled; ECE,
AURC, the accuracy with 80% answered and its --min-confidence are the mean of the two halves' values (each half
answers its own 80%), not pooled figures. Then the mean over
folders. A temperature never changes a decision (argmax), so the accuracy of a half must be the same as trained
and recalibrated: checked per half, and the exit status is 1 if it is not.

Output: OUTPUT/recalibration.json (every figure of every half, the temperatures, the checks, the commands) and
OUTPUT/recalibration.md: the fitted temperatures (training's, the refit on A and on B, and their product, which
is what the new folder has folded in); ECE / log loss / Brier and accuracy as trained -> recalibrated; the
empirical coverage at 0.8 and 0.9 with the mean set size, and whether it lies in [target - 0.02, target + 0.03];
the accuracy with 80% of the texts answered and the `predict --min-confidence` that answers them; the figures of
each half; the checks; with the command line, the machine and the date.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Shared with the calibration benchmark (scripts/ is on sys.path when either runs as `python scripts/NAME.py`).
from benchmark_calibration import (
    BAND,
    MISSING,
    Progress,
    _is_number,
    _log_tail,
    _now,
    _num,
    at_level,
    dig,
    in_band,
    machine,
    program,
    read_json,
    read_rows,
    shown,
    table,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.8, 0.9)
"""The coverage targets evaluated."""
ANSWERED = 0.8
"""The share of texts answered in the abstention figures (evaluate reports 1.0, 0.9, 0.8 and 0.5)."""
HALVES = ("A", "B")
SETTINGS = ("as_trained", "recalibrated")
DEFAULT_MODELS = [Path(f"runs/calibration_benchmark/runs/sst2/n2000_s{seed}") for seed in range(3)]
CALIBRATION_REPORT = "calibration_report.json"
METRIC_KEYS = ("accuracy", "ece", "log_loss", "brier")
"""Top-level figures of an evaluate report taken as they are."""


def other(half: str) -> str:
    return "B" if half == "A" else "A"


def level_text(level: float) -> str:
    return f"{round(level * 100)}"


# ------------------------------------------------------------------------------------------------ the halves


def _column(columns: list[str], names: tuple[str, ...], path: Path) -> str:
    found = next((name for name in names if name in columns), None)
    if found is None:
        raise ValueError(f"{path} has no {' or '.join(names)} column (it has {', '.join(columns)})")
    return found


def split_halves(source: Path, seed: int) -> dict[str, list[dict[str, str]]]:
    """The rows of `source` as text,label, shuffled with random.Random(seed): A the first half, B the rest."""
    columns, rows = read_rows(source)
    text, label = _column(columns, ("text", "sentence"), source), _column(columns, ("label", "labels"), source)
    kept = [{"text": row[text], "label": row[label]} for row in rows]
    random.Random(seed).shuffle(kept)
    middle = len(kept) // 2
    return {"A": kept[:middle], "B": kept[middle:]}


def write_csv(rows: list[dict[str, str]], target: Path) -> None:
    """Write text,label rows to `target`, unless the same content is there already (its fingerprint stays)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["text", "label"])
    writer.writeheader()
    writer.writerows(rows)
    if target.is_file() and target.read_text(encoding="utf-8") == buffer.getvalue():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())


def half_paths(work_dir: Path) -> dict[str, Path]:
    return {half: work_dir / "data" / f"sst2_dev_{half}.csv" for half in HALVES}


# ------------------------------------------------------------------------------------------------ the plan


@dataclass
class Step:
    """One `nlp-transfer` command: its arguments (after the program), what it writes, and what it reads."""

    title: str
    argv: list[str]
    output: Path
    inputs: tuple[Path, ...]
    folder: bool
    """True for `calibrate` (writes a folder), False for `evaluate` (writes a JSON report)."""

    @property
    def record(self) -> Path:
        """Beside the output, never in it: calibrate refuses to replace a folder holding files it did not write."""
        return self.output.with_name(self.output.name + ".command.json")


@dataclass
class ModelPlan:
    """The steps for one trained folder, and where each result will be."""

    name: str
    folder: Path
    evaluations: Path
    """Where its evaluate reports go."""
    calibrated: dict[str, Path] = field(default_factory=dict)
    """Half fitted on -> the calibrated folder."""
    reports: dict[tuple[str, str, float], Path] = field(default_factory=dict)
    """(setting, half scored, level) -> the evaluate report."""
    steps: list[Step] = field(default_factory=list)


def model_names(folders: list[Path]) -> list[str]:
    """Each folder's name; parent_name where two folders share one; then _2, _3... if that is not enough."""
    names = [folder.name for folder in folders]
    names = [f"{f.parent.name}_{f.name}" if names.count(name) > 1 else name for f, name in zip(folders, names)]
    unique: list[str] = []
    for name in names:
        candidate, number = name, 1
        while candidate in unique:
            number += 1
            candidate = f"{name}_{number}"
        unique.append(candidate)
    return unique


def _evaluate_step(plan: ModelPlan, setting: str, model: Path, half: str, level: float, data: Path) -> Step:
    tag = "trained" if setting == "as_trained" else f"calibrated_on_{other(half)}"
    report = plan.evaluations / f"{tag}_eval_{half}_c{level_text(level)}.json"
    plan.reports[(setting, half, level)] = report
    argv = ["evaluate", "--model", str(model), "--file", str(data), "--coverage", str(level), "--output", str(report)]
    scored = "as trained" if setting == "as_trained" else f"calibrated on {other(half)}"
    title = f"{plan.name}: evaluate ({scored}) on {half} at coverage {level}"
    return Step(title, argv, report, (model, data), folder=False)


def plan_model(folder: Path, name: str, halves: dict[str, Path], work_dir: Path) -> ModelPlan:
    """As trained on A and B at each level; then calibrate on A -> evaluate on B, calibrate on B -> evaluate on A."""
    plan = ModelPlan(name, folder, work_dir / "evaluations" / name)
    for half in HALVES:
        for level in LEVELS:
            plan.steps.append(_evaluate_step(plan, "as_trained", folder, half, level, halves[half]))
    for fitted in HALVES:
        target = work_dir / "calibrated" / f"{name}_on_{fitted}"
        plan.calibrated[fitted] = target
        argv = ["calibrate", "--model", str(folder), "--file", str(halves[fitted]), "--output-dir", str(target)]
        title = f"{name}: calibrate on {fitted}"
        plan.steps.append(Step(title, argv, target, (folder, halves[fitted]), folder=True))
        scored = other(fitted)
        for level in LEVELS:
            plan.steps.append(_evaluate_step(plan, "recalibrated", target, scored, level, halves[scored]))
    return plan


# ------------------------------------------------------------------------------------------------ running


def fingerprint(path: Path) -> str | None:
    """A file's sha256; a folder's name, size and modification time of each visible file; None if absent."""
    if path.is_file():
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    if not path.is_dir():
        return None
    entries = []
    for item in sorted(path.iterdir()):
        if item.is_file() and not item.name.startswith("."):
            stat = item.stat()
            entries.append(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "files:" + hashlib.sha256("\n".join(entries).encode()).hexdigest()


def fingerprints(step: Step) -> dict[str, str | None]:
    return {str(path): fingerprint(path) for path in step.inputs}


def complete(step: Step) -> bool:
    """Whether the step's output is what a finished run writes."""
    if step.folder:
        report = read_json(step.output / CALIBRATION_REPORT)
        return isinstance(report, dict) and "rows" in report and (step.output / "config.json").is_file()
    report = read_json(step.output)
    return isinstance(report, dict) and "num_examples" in report and "accuracy" in report


def decide(step: Step, force: bool) -> tuple[str, str]:
    """('run' | 'rerun' | 'skip' | 'refuse', why): what to do with the step's output."""
    if not step.output.exists():
        return "run", "new"
    recorded = read_json(step.record)
    if not isinstance(recorded, dict):
        if step.folder:
            return "refuse", f"{step.output} exists but this script did not make it ({step.record} is missing)"
        return "rerun", "no record of the command that wrote it"
    if recorded.get("argv") != step.argv:
        return "rerun", "it was made by another command"
    if recorded.get("inputs") != fingerprints(step):
        return "rerun", "its inputs changed since"
    if force:
        return "rerun", "--force"
    if not complete(step):
        return "rerun", "it is not complete"
    return "skip", "complete, same command and inputs"


def full_argv(step: Step, action: str) -> list[str]:
    """The step's arguments, with --overwrite-output-dir where calibrate replaces a folder it wrote before."""
    return step.argv + (["--overwrite-output-dir"] if step.folder and action == "rerun" else [])


def execute(step: Step, action: str, log: Path) -> int:
    """Run the step with its output in `log`; record its command and inputs beside its output on success."""
    env = {**os.environ}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    log.parent.mkdir(parents=True, exist_ok=True)
    step.output.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as handle:
        done = subprocess.run([*program(), *full_argv(step, action)], stdout=handle, stderr=subprocess.STDOUT, env=env)
    if done.returncode == 0:
        record = {"argv": step.argv, "inputs": fingerprints(step), "finished": _now()}
        step.record.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return done.returncode


def run_step(step: Step, args: argparse.Namespace, progress: Progress, index: int, log: Path) -> dict[str, Any]:
    """Do (or reuse) one step; its entry in the model's 'steps' list."""
    action, why = decide(step, args.force)
    entry: dict[str, Any] = {"title": step.title, "command": shown(full_argv(step, action)), "output": str(step.output)}
    if action == "skip":
        progress.say(index, f"{step.title}: reused ({why}) {step.output}")
        return {**entry, "status": "reused"}
    if action == "refuse":
        progress.say(index, f"{step.title}: FAILED, {why}; choose another --work-dir or move it away")
        return {**entry, "status": "failed", "error": why}
    progress.say(index, f"{step.title}: running ({why}), log {log}")
    started = time.monotonic()
    code = execute(step, action, log)
    wall = round(time.monotonic() - started, 1)
    if code != 0 or not complete(step):
        error = f"exit status {code}; the end of {log}:\n{_log_tail(log)}"
        progress.say(index, f"{step.title}: FAILED after {wall:.0f} s")
        print(error, file=sys.stderr)
        return {**entry, "status": "failed", "wall_s": wall, "error": error}
    progress.say(index, f"{step.title}: done in {wall:.0f} s{_headline(step)}")
    return {**entry, "status": "ran", "wall_s": wall}


def _headline(step: Step) -> str:
    report = read_json(step.output / CALIBRATION_REPORT if step.folder else step.output) or {}
    if step.folder:
        new, previous = _num(report.get("temperature"), 4), _num(report.get("previous_temperature"), 4)
        return f", temperature {new} on top of {previous}"
    conformal = report.get("conformal") or {}
    return f", accuracy {_num(report.get('accuracy'), 4)}, coverage {_num(conformal.get('coverage'), 4)}"


def run_all(plans: list[ModelPlan], args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Every step of every plan, in order; a model stops at its first failure, the whole run too unless --keep-going."""
    progress = Progress(sum(len(plan.steps) for plan in plans))
    done: dict[str, list[dict[str, Any]]] = {}
    index = 0
    for plan in plans:
        done[plan.name] = []
        for step in plan.steps:
            index += 1
            log = args.work_dir / "logs" / plan.name / f"{step.output.name.removesuffix('.json')}.log"
            done[plan.name].append(run_step(step, args, progress, index, log))
            if done[plan.name][-1]["status"] == "failed":
                break
        if done[plan.name][-1]["status"] == "failed" and not args.keep_going:
            print("Stopped at the first failure (--keep-going goes on with the next folder).", file=sys.stderr)
            break
    return done


# ------------------------------------------------------------------------------------------------ results


def _mean(values: list[Any]) -> float | None:
    """The mean, or None when a value is missing."""
    return statistics.mean(values) if values and all(_is_number(v) for v in values) else None


def mean_figures(figures: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: _mean([f.get(key) for f in figures]) for key in figures[0]} if figures else {}


def half_figures(reports: dict[float, Any]) -> dict[str, Any]:
    """One half's figures from its evaluate reports at each level: metrics, abstention, coverage per level."""
    base = reports[LEVELS[-1]] or {}
    figures: dict[str, Any] = {key: base.get(key) for key in METRIC_KEYS}
    abstention = base.get("abstention")
    figures["accuracy_all_answered"] = at_level(dig(abstention, "accuracy_at"), 1.0)
    figures["accuracy_80_answered"] = at_level(dig(abstention, "accuracy_at"), ANSWERED)
    figures["min_confidence_80_answered"] = at_level(dig(abstention, "confidence_at"), ANSWERED)
    figures["aurc"] = dig(abstention, "aurc")
    for level in LEVELS:
        conformal = dig(reports[level], "conformal") or {}
        figures[f"quantile_{level}"] = conformal.get("quantile")
        figures[f"coverage_{level}"] = conformal.get("coverage")
        figures[f"mean_set_size_{level}"] = conformal.get("mean_set_size")
        figures[f"empty_sets_{level}"] = conformal.get("empty_sets")
    return figures


def reports_agree(reports: dict[float, Any]) -> bool:
    """Whether the runs at each level gave the same metrics and abstention (only the coverage should differ)."""
    keys = (*METRIC_KEYS, "abstention")
    first = reports[LEVELS[0]] or {}
    return all({k: (r or {}).get(k) for k in keys} == {k: first.get(k) for k in keys} for r in reports.values())


def temperature_numbers(folder: Path) -> dict[str, Any]:
    """A calibrated folder's refit: new and previous temperature, their product and what config.json has folded in."""
    report = read_json(folder / CALIBRATION_REPORT) or {}
    new, previous = report.get("temperature"), report.get("previous_temperature")
    product = new * (previous if _is_number(previous) else 1.0) if _is_number(new) else None
    folded = dig(read_json(folder / "config.json"), "nlp_transfer", "calibration", "temperature")
    return {
        "temperature": new,
        "previous_temperature": previous,
        "product": product,
        "folded_in": folded,
        "rows": report.get("rows"),
        "in_sample_before": report.get("before"),
        "in_sample_after": report.get("after"),
    }


def _same(before: Any, after: Any, tolerance: float = 1e-9) -> bool | None:
    if not (_is_number(before) and _is_number(after)):
        return None
    return abs(before - after) <= tolerance


def trained_record(folder: Path) -> dict[str, Any]:
    """What the trained folder's metrics.json says of the whole test set (for the pooled cross-check)."""
    metrics = read_json(folder / "metrics.json") or {}
    record = {
        "temperature": dig(metrics, "calibration", "temperature"),
        "validation_rows": dig(metrics, "calibration", "fitted_on", "rows"),
        "test_file": dig(metrics, "data_sources", "test"),
        "test_rows": dig(metrics, "num_examples", "test"),
        "test_accuracy": dig(metrics, "test", "accuracy"),
    }
    for level in LEVELS:
        record[f"test_coverage_{level}"] = dig(at_level(dig(metrics, "conformal", "test"), level), "coverage")
    return record


def checks(entry: dict[str, Any]) -> dict[str, Any]:
    """Accuracy unchanged by the temperature, same metrics across levels, product = folded, pooled = metrics.json."""
    halves, trained = entry["halves"], entry["trained_record"]
    pooled = entry["mean"]["as_trained"]
    found: dict[str, Any] = {
        "accuracy_equal": {
            h: _same(halves[h]["as_trained"]["accuracy"], halves[h]["recalibrated"]["accuracy"]) for h in HALVES
        },
        "accuracy_80_answered_equal": {
            h: _same(halves[h]["as_trained"]["accuracy_80_answered"], halves[h]["recalibrated"]["accuracy_80_answered"])
            for h in HALVES
        },
        "levels_agree": all(all(v.values()) for v in entry["levels_agree"].values()),
        "product_is_folded": {h: _same(t["product"], t["folded_in"], 1e-5) for h, t in entry["temperatures"].items()},
        "pooled_vs_metrics_json": {"accuracy": (pooled["accuracy"], trained["test_accuracy"])},
    }
    for level in LEVELS:
        found["pooled_vs_metrics_json"][f"coverage_{level}"] = (
            pooled[f"coverage_{level}"],
            trained[f"test_coverage_{level}"],
        )
    return found


def model_entry(plan: ModelPlan, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """recalibration.json's entry for a folder: its steps, and when all ran, every figure and check."""
    entry: dict[str, Any] = {"name": plan.name, "folder": str(plan.folder), "steps": steps}
    failed = [step for step in steps if step["status"] == "failed"]
    if failed or len(steps) < len(plan.steps):
        return {
            **entry,
            "status": "failed",
            "error": failed[0]["error"] if failed else "not run: an earlier folder failed (--keep-going)",
        }
    entry["status"] = "ok"
    entry["trained_record"] = trained_record(plan.folder)
    entry["temperatures"] = {f"fitted_on_{h}": temperature_numbers(plan.calibrated[h]) for h in HALVES}
    entry["halves"], entry["levels_agree"] = {}, {}
    for half in HALVES:
        entry["halves"][half], entry["levels_agree"][half] = {}, {}
        for setting in SETTINGS:
            reports = {level: read_json(plan.reports[(setting, half, level)]) for level in LEVELS}
            figures = half_figures(reports)
            figures["calibrated_on"] = other(half) if setting == "recalibrated" else None
            entry["halves"][half][setting] = figures
            entry["levels_agree"][half][setting] = reports_agree(reports)
    entry["mean"] = {
        setting: mean_figures([_numbers(entry["halves"][h][setting]) for h in HALVES]) for setting in SETTINGS
    }
    entry["checks"] = checks(entry)
    return entry


def _numbers(figures: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in figures.items() if key != "calibrated_on"}


def overall_mean(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean over the folders that finished, per setting, and of their temperatures."""
    done = [entry for entry in entries if entry["status"] == "ok"]
    if not done:
        return {}
    mean = {setting: mean_figures([entry["mean"][setting] for entry in done]) for setting in SETTINGS}
    mean["temperatures"] = {
        key: mean_figures([{k: v for k, v in e["temperatures"][key].items() if _is_number(v)} for e in done])
        for key in done[0]["temperatures"]
    }
    mean["models"] = len(done)
    return mean


# ------------------------------------------------------------------------------------------------ the report


def _arrow(before: Any, after: Any, digits: int = 4) -> str:
    return f"{_num(before, digits)} -> {_num(after, digits)}"


def _verdict(values: list[bool | None]) -> str:
    """'yes' when every check holds, else how many did, out of how many."""
    if any(value is None for value in values):
        return MISSING
    return "yes" if all(values) else f"NO ({sum(bool(v) for v in values)}/{len(values)})"


def _rows(entries: list[dict[str, Any]], mean: dict[str, Any], make: Any) -> list[list[str]]:
    """One row per finished folder (make(name, figures, entry)) and, with more than one, their mean in bold."""
    done = [entry for entry in entries if entry["status"] == "ok"]
    rows = [make(entry["name"], entry["mean"] | {"temperatures": entry["temperatures"]}, entry) for entry in done]
    if len(done) > 1:
        rows.append(make(f"**mean of {len(done)}**", mean, None))
    return rows


def temperature_table(entries: list[dict[str, Any]], mean: dict[str, Any]) -> str:
    headers = ["folder", "from training (validation rows)"]
    for half in HALVES:
        headers += [f"refit on {half} (scored on {other(half)})", f"{half}: product (folded in)"]

    def make(name: str, figures: dict[str, Any], entry: dict[str, Any] | None) -> list[str]:
        temperatures = figures["temperatures"]
        training = temperatures["fitted_on_A"].get("previous_temperature")
        rows = dig(entry, "trained_record", "validation_rows")
        cells = [name, _num(training, 3) + (f" ({rows})" if rows else "")]
        for half in HALVES:
            numbers = temperatures[f"fitted_on_{half}"]
            cells.append(_num(numbers.get("temperature"), 3))
            cells.append(f"{_num(numbers.get('product'), 3)} ({_num(numbers.get('folded_in'), 3)})")
        return cells

    return table(headers, _rows(entries, mean, make))


def _members(entries: list[dict[str, Any]], entry: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The folder of a row, or every finished folder for the mean row (entry None)."""
    return [entry] if entry is not None else [e for e in entries if e["status"] == "ok"]


def calibration_table(entries: list[dict[str, Any]], mean: dict[str, Any]) -> str:
    headers = ["folder", "accuracy as trained", "accuracy recalibrated", "equal", "ECE", "log loss", "Brier"]

    def make(name: str, figures: dict[str, Any], entry: dict[str, Any] | None) -> list[str]:
        trained, recalibrated = figures["as_trained"], figures["recalibrated"]
        members = _members(entries, entry)
        equal = _verdict([same for member in members for same in member["checks"]["accuracy_equal"].values()])
        equal += f" ({len(members) * len(HALVES)} halves)" if equal == "yes" else ""
        cells = [name, _num(trained["accuracy"], 4), _num(recalibrated["accuracy"], 4), equal]
        return cells + [_arrow(trained[key], recalibrated[key]) for key in ("ece", "log_loss", "brier")]

    return table(headers, _rows(entries, mean, make))


def conformal_table(entries: list[dict[str, Any]], mean: dict[str, Any]) -> str:
    headers = ["folder", "target"]
    for setting in ("as trained", "recalibrated"):
        headers += [f"coverage {setting}", "in band", "mean set size", "empty sets"]
    rows = []
    for level in LEVELS:

        def make(name: str, figures: dict[str, Any], entry: dict[str, Any] | None, level: float = level) -> list[str]:
            cells = [name, f"{level:.1f}"]
            for setting in SETTINGS:
                numbers = figures[setting]
                coverage = numbers[f"coverage_{level}"]
                halves = [m["halves"][h][setting] for m in _members(entries, entry) for h in HALVES]
                hits = sum(in_band(half[f"coverage_{level}"], level) == "yes" for half in halves)
                cells += [_num(coverage, 4), f"{in_band(coverage, level)} ({hits}/{len(halves)} halves)"]
                cells += [_num(numbers[f"mean_set_size_{level}"], 3), _num(numbers[f"empty_sets_{level}"], 3)]
            return cells

        rows += _rows(entries, mean, make)
    return table(headers, rows)


def abstention_table(entries: list[dict[str, Any]], mean: dict[str, Any]) -> str:
    headers = ["folder", "accuracy, all answered"]
    for setting in ("as trained", "recalibrated"):
        headers += [f"accuracy, 80% answered, {setting}", "--min-confidence"]
    headers.append("AURC")

    def make(name: str, figures: dict[str, Any], entry: dict[str, Any] | None) -> list[str]:
        cells = [name, _num(figures["as_trained"]["accuracy_all_answered"], 4)]
        for setting in SETTINGS:
            numbers = figures[setting]
            cells += [_num(numbers["accuracy_80_answered"], 4), _num(numbers["min_confidence_80_answered"], 4)]
        return [*cells, _arrow(figures["as_trained"]["aurc"], figures["recalibrated"]["aurc"])]

    return table(headers, _rows(entries, mean, make))


def halves_table(entries: list[dict[str, Any]]) -> str:
    headers = ["folder", "half", "folder scored", "accuracy", "ECE", "log loss", "Brier"]
    headers += [f"coverage {level} (size)" for level in LEVELS] + ["accuracy, 80% answered", "--min-confidence"]
    rows = []
    for entry in (e for e in entries if e["status"] == "ok"):
        for half in HALVES:
            for setting in SETTINGS:
                numbers = entry["halves"][half][setting]
                scored = "as trained" if setting == "as_trained" else f"calibrated on {numbers['calibrated_on']}"
                cells = [entry["name"], half, scored, *(_num(numbers[key], 4) for key in METRIC_KEYS)]
                for level in LEVELS:
                    cells.append(
                        f"{_num(numbers[f'coverage_{level}'], 4)} ({_num(numbers[f'mean_set_size_{level}'], 3)})"
                    )
                cells += [_num(numbers["accuracy_80_answered"], 4), _num(numbers["min_confidence_80_answered"], 4)]
                rows.append(cells)
    return table(headers, rows)


def checks_table(entries: list[dict[str, Any]]) -> str:
    headers = ["folder", "accuracy equal (A, B)", "80%-answered accuracy equal", "0.8 and 0.9 runs agree"]
    headers += ["new x previous = folded in", "pooled as trained vs metrics.json test (accuracy; coverage 0.8, 0.9)"]
    rows = []
    for entry in entries:
        if entry["status"] != "ok":
            rows.append([entry["name"], f"FAILED: {entry['error'].splitlines()[0]}", "", "", "", ""])
            continue
        found = entry["checks"]
        pooled = "; ".join(
            f"{_num(ours, 4)} vs {_num(theirs, 4)}" for ours, theirs in found["pooled_vs_metrics_json"].values()
        )
        rows.append(
            [
                entry["name"],
                _verdict(list(found["accuracy_equal"].values())),
                _verdict(list(found["accuracy_80_answered_equal"].values())),
                "yes" if found["levels_agree"] else "NO",
                _verdict(list(found["product_is_folded"].values())),
                pooled,
            ]
        )
    return table(headers, rows)


def example_commands(entries: list[dict[str, Any]]) -> str:
    """The commands of the first folder, as a block a reader can copy."""
    first = next((entry for entry in entries if entry["steps"]), None)
    if first is None:
        return "(none run)"
    commands = [step["command"].replace(" --overwrite-output-dir", "") for step in first["steps"]]
    return "```\n" + "\n".join(commands) + "\n```"


def summary_markdown(results: dict[str, Any]) -> str:
    host, entries, mean, split = results["machine"], results["models"], results["mean"], results["split"]
    low, high = BAND
    rows = min(split["rows"].values())
    noise = (0.8 * 0.2 / rows) ** 0.5 if rows else float("nan")
    sizes = " and ".join(f"{half} {split['rows'][half]} rows" for half in HALVES)
    parts = [
        "# Recalibration on SST-2's GLUE dev set, cross-fitted",
        f"Produced by `{results['command']}` (from {results['cwd']}), {results['date']}.",
        f"Machine: {host['nproc']} cores (nproc), {host['cpu']}; torch {host['torch']}, "
        f"nlp-transfer {host['nlp_transfer']} (git {host['git']}).",
        f"{split['source']} shuffled with random.Random({split['seed']}).shuffle and cut into {sizes}. As trained: "
        "each folder as `nlp-transfer train` wrote it (temperature and conformal quantiles from its validation rows, "
        "carved from train.csv), scored on A and on B. Recalibrated: `nlp-transfer calibrate` on one half, scored on "
        "the other, so no figure is in-sample. Each figure is the mean of the two halves: with equal halves, accuracy, "
        "log loss, Brier, coverage, set size and empty sets are the pooled figures of all the rows; ECE, AURC, the "
        "accuracy with 80% answered and its --min-confidence are the mean of the two halves' values (each half "
        "answers its own 80%). The last row is the mean over folders.",
        "## Temperatures",
        "`calibrate` fits a temperature on top of the one training folded into the weights; the new folder has their "
        "product folded in (in brackets: what its config.json records).",
        temperature_table(entries, mean),
        "## Calibration: as trained -> recalibrated on the other half",
        "A temperature never changes a decision, so the accuracy of each half must be equal as trained and "
        "recalibrated ('equal' checks both halves).",
        calibration_table(entries, mean),
        "## Conformal prediction sets: empirical coverage at each target",
        f"In band: the pooled coverage within [target - {low}, target + {high}]; in brackets, how many halves' own "
        f"coverage is (a half of {rows} rows: a standard error of about {noise:.3f} at 0.8 from sampling alone). "
        "Empty sets: share of texts whose set holds no label (no label likely enough).",
        conformal_table(entries, mean),
        "## Abstention: answer only the 80% most confident texts",
        "--min-confidence: the `nlp-transfer predict --min-confidence` that answers 80% of the half's texts.",
        abstention_table(entries, mean),
        "## Each half",
        halves_table(entries),
        "## Checks",
        "Pooled as trained vs metrics.json: the mean of the two halves as trained against the figures training "
        "wrote for the whole test file (same rows, same folder).",
        checks_table(entries),
        "## Commands (first folder)",
        example_commands(entries),
    ]
    return "\n\n".join(parts) + "\n"


def write_outputs(results: dict[str, Any], output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "recalibration.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (output / "recalibration.md").write_text(summary_markdown(results), encoding="utf-8")
    print(f"Wrote {output / 'recalibration.json'} and {output / 'recalibration.md'}", file=sys.stderr)


def dry_run(plans: list[ModelPlan], force: bool) -> None:
    """Print each step's command (with what a real run would do with its output); touch nothing."""
    total = sum(len(plan.steps) for plan in plans)
    index = 0
    for plan in plans:
        for step in plan.steps:
            index += 1
            action, why = decide(step, force)
            print(f"# [{index}/{total}] {step.title}: {action} ({why})")
            print(shown(full_argv(step, action)))


# ------------------------------------------------------------------------------------------------ options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.path.relpath(REPO_ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--models",
        nargs="+",
        type=Path,
        default=DEFAULT_MODELS,
        metavar="DIR",
        help="Folders `nlp-transfer train` wrote for SST-2 (labels 0 and 1), one or more (default: the three of "
        "scripts/benchmark_calibration.py, runs/calibration_benchmark/runs/sst2/n2000_s0 _s1 _s2).",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(default_data),
        help="Folder holding sst2/test.csv, GLUE's dev set (default: ../shared/data from the repository root).",
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="Seed of random.Random(seed).shuffle that cuts the halves (default 0).",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("runs/recalibration_benchmark"),
        help="Folder for the halves, the calibrated folders, the evaluation reports and the logs; git-ignored under "
        "runs/ (default: runs/recalibration_benchmark).",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("docs/benchmarks/calibration"),
        help="Folder for recalibration.json and recalibration.md (default: docs/benchmarks/calibration).",
    )
    parser.add_argument("--dry-run", action="store_true", help="Print the commands; write and run nothing.")
    parser.add_argument("--force", action="store_true", help="Redo steps whose outputs are already complete.")
    parser.add_argument(
        "--keep-going", action="store_true", help="After a failed step, go on with the next folder (not the same one)."
    )
    return parser


def check_inputs(args: argparse.Namespace, source: Path) -> list[str]:
    """What is missing before anything runs: the dev file, model folders."""
    problems = [] if source.is_file() else [f"{source} does not exist (see --data-root)"]
    for folder in args.models:
        if not (folder / "config.json").is_file():
            problems.append(f"{folder} is not a trained folder (no config.json)")
    if problems and args.models == DEFAULT_MODELS:
        problems.append(
            "the default --models are what `python scripts/benchmark_calibration.py --only sst2` trains; "
            "run it first or pass --models"
        )
    return problems


def main() -> int:
    args = build_parser().parse_args()
    source = args.data_root / "sst2" / "test.csv"
    problems = check_inputs(args, source)
    names = model_names([folder.resolve() for folder in args.models])
    if problems and not args.dry_run:
        print("Cannot start:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    paths = half_paths(args.work_dir)
    if args.dry_run:
        for problem in problems:
            print(f"# WARNING: {problem}")
        dry_run(
            [plan_model(folder, name, paths, args.work_dir) for folder, name in zip(args.models, names)], args.force
        )
        return 0
    halves = split_halves(source, args.split_seed)
    plans = [plan_model(folder, name, paths, args.work_dir) for folder, name in zip(args.models, names)]
    for half in HALVES:
        write_csv(halves[half], paths[half])
    done = run_all(plans, args)
    entries = [model_entry(plan, done.get(plan.name, [])) for plan in plans]
    results = {
        "command": shlex.join(["python", sys.argv[0], *sys.argv[1:]]),
        "cwd": os.getcwd(),
        "date": _now(),
        "machine": machine(),
        "split": {
            "source": str(source),
            "seed": args.split_seed,
            "files": {half: str(path) for half, path in paths.items()},
            "rows": {half: len(rows) for half, rows in halves.items()},
        },
        "levels": list(LEVELS),
        "band": list(BAND),
        "models": entries,
        "mean": overall_mean(entries),
    }
    write_outputs(results, args.output)
    return exit_status(entries)


def exit_status(entries: list[dict[str, Any]]) -> int:
    """1 if a folder failed or a check that must hold did not (accuracy changed, levels disagree), else 0."""
    status = 0
    for entry in entries:
        if entry["status"] != "ok":
            status = 1
            continue
        found = entry["checks"]
        if not all(found["accuracy_equal"].values()):
            print(f"{entry['name']}: ACCURACY CHANGED by the temperature: {found['accuracy_equal']}", file=sys.stderr)
            status = 1
        if not found["levels_agree"]:
            print(f"{entry['name']}: the 0.8 and 0.9 evaluations disagree on a metric", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
