"""A whole corpus through `nlp-transfer predict --file`: flat memory, speed beside the pipeline, kill and resume.

    python scripts/benchmark_corpus.py --output-dir runs/corpus_bench            # the full run: 1 to 1.5 h on 2 cores
    python scripts/benchmark_corpus.py --output-dir runs/corpus_bench --model runs/sst2/model --skip memory
    python scripts/benchmark_corpus.py --output-dir /tmp/corpus_smoke --model /tmp/demo_model \\
        --rows 3000 --small-rows 1000 --speed-rows 500 --pipeline-batch-sizes 8,32   # smoke run: every section

The corpus: every non-empty `text` of SST-2 train.csv (60,614 phrases and sentences) and AG News train.csv + test.csv
(17,601 news snippets) from --data-root (their READMEs give sources and terms), shuffled together once (Python's
random.Random(0), so any prefix mixes both), then repeated (cycling) to the rows asked for and written as CSV
`id,text` under OUTPUT_DIR/data; id is the row number from 1, zero-padded to 9 digits. Each size is the prefix
of the same sequence: the --small-rows file is the first rows of the --rows file.

The model: --model, a folder written by `nlp-transfer train`. Without it one is trained first (and said so):
`nlp-transfer train` on the first 2,000 rows of SST-2 train.csv, validated on the first 500 of validation.csv,
one epoch, the bundled MiniLM, into OUTPUT_DIR/model (reused by a later run with the same --output-dir).
The ONNX int8 engine is the folder exported once by `nlp-transfer export --quantize int8 --no-latency`
into OUTPUT_DIR/export_int8 (timed apart; its verification's agreement is reported).

Every measurement runs in a process of its own (the `nlp-transfer` command, or this script in a worker mode), so its
peak resident memory (ru_maxrss from os.wait4 on that one child) is its own. Every run is on the CPU; `predict
--file` runs with --keep-columns id --quiet --device cpu, writes CSV and its rate is the one its summary line
(stderr) reports: the loop of reading, predicting and writing, model loading excluded; the pipeline is timed
over its own loop, loading excluded too. The sections (--skip any of them):

  memory  peak RSS of `predict --file` on --small-rows rows and on --rows rows with one engine (--memory-engine;
          onnx-int8 by default: torch needs 40 min or more for 1M rows on 2 cores); target: ratio <= 1.15.
  speed   the same --speed-rows rows by (a) the torch engine (`predict --file`, the trained folder), (b)
          transformers.pipeline("text-classification", model=DIR, device="cpu") over a KeyDataset of a
          datasets.Dataset, at each of --pipeline-batch-sizes (the best is the reference), (c) the ONNX int8
          engine (`predict --file`, the exported folder). Targets: torch/pipeline >= 1.5x, int8/pipeline >= 3x,
          int8 labels equal to torch's on >= 99% of rows, and `predict --file`'s labels equal to
          load_classifier(DIR).predict(texts) in memory on the first 2,000 rows: 100%.
  resume  `predict --file` on --small-rows rows (--resume-engine) run whole; then started again, SIGKILLed once
          about half its chunks are in the hidden `.NAME.partial/` folder, and continued with the same command
          plus --resume. The resumed file's md5 must equal the whole run's, and the rows the resumed run
          predicted (its summary line) must equal all rows minus the rows written before the kill (counted in
          the part files). Where --chunk-rows cuts --small-rows into fewer than 4 chunks (a smoke run), this
          section uses a tenth of --small-rows as --chunk-rows, and says so.

Output: OUTPUT_DIR/results.json (every figure, the machine, the command) and OUTPUT_DIR/results.md (a table per
section), rewritten after each section; the tables are printed at the end. Child logs: OUTPUT_DIR/logs. Predictions
of the memory section are counted and deleted (the 1M-row one is large); the others are kept.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import importlib.metadata
import itertools
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from nlp_transfer.tables import markdown_table

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("sst2/train.csv", "ag_news/train.csv", "ag_news/test.csv")
SECTIONS = ("memory", "speed", "resume")
ENGINES = ("torch", "onnx-int8")
ID_DIGITS = 9
IN_MEMORY_ROWS = 2000
TRAIN_ROWS, VALIDATION_ROWS = 2000, 500
TARGETS = {
    "memory_ratio": 1.15,
    "torch_vs_pipeline": 1.5,
    "int8_vs_pipeline": 3.0,
    "int8_same_as_torch": 0.99,
    "file_same_as_in_memory": 1.0,
}
SUMMARY = re.compile(
    r"^(?P<rows>[\d,]+) rows: (?P<predicted>[\d,]+) predicted"
    r"(?: \((?P<resumed>[\d,]+) rows were written by the interrupted run\))?"
    r", (?P<here>[\d,]+) in (?P<seconds>[\d.]+) s",
    re.MULTILINE,
)
PART = re.compile(r"part-(\d{6})")


# ------------------------------------------------------------------------------------------------ child processes


class Child(NamedTuple):
    """A finished child process: its exit status, wall time, own peak RSS and log."""

    argv: list[str]
    returncode: int
    seconds: float
    cpu_seconds: float
    """User + system CPU time: on a shared machine the wall time says less."""
    peak_rss_mib: float
    log: str

    def output(self) -> str:
        return Path(self.log).read_text(encoding="utf-8", errors="replace")

    def check(self) -> Child:
        if self.returncode != 0:
            tail = "\n".join(self.output().splitlines()[-25:])
            raise RuntimeError(f"{shlex.join(self.argv)} exited with {self.returncode}:\n{tail}")
        return self


def program() -> list[str]:
    """The `nlp-transfer` console script of this interpreter's environment, else `python -m nlp_transfer.cli`."""
    beside = Path(sys.executable).with_name("nlp-transfer")
    found = str(beside) if beside.is_file() else shutil.which("nlp-transfer")
    return [found] if found else [sys.executable, "-m", "nlp_transfer.cli"]


def child_env() -> dict[str, str]:
    env = {**os.environ}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bar, which --quiet keeps
    return env


def start(argv: list[str], log: Path) -> tuple[subprocess.Popen, float]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=child_env())
    return process, time.perf_counter()


def finish(process: subprocess.Popen, started: float, log: Path, options: int = 0) -> Child | None:
    """Reap the child with os.wait4 (its own ru_maxrss: RUSAGE_CHILDREN would be the largest of all children so far);
    None when `options` is os.WNOHANG and it is still running."""
    pid, status, usage = os.wait4(process.pid, options)
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return Child(process.args, process.returncode, seconds, cpu, usage.ru_maxrss / 1024, str(log))


def run_child(argv: list[str], log: Path) -> Child:
    process, started = start(argv, log)
    child = finish(process, started, log)
    assert child is not None
    return child


def run_worker(mode: str, spec: dict[str, Any], out: Path) -> tuple[dict[str, Any], Child]:
    """This script in a worker mode, in a process of its own; the worker writes its result as JSON."""
    result = out / "workers" / f"{mode}.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), "_worker", mode, json.dumps(spec), str(result)]
    child = run_child(argv, out / "logs" / f"worker_{mode}.log").check()
    return json.loads(result.read_text(encoding="utf-8")), child


# ------------------------------------------------------------------------------------------------ corpus and model


def text_pool(data_root: Path) -> list[str]:
    """Every non-empty text of the sources, shuffled together with a fixed seed."""
    texts: list[str] = []
    for name in SOURCES:
        with open(data_root / name, newline="", encoding="utf-8") as handle:
            texts += [row["text"] for row in csv.DictReader(handle) if row["text"].strip()]
    random.Random(0).shuffle(texts)
    return texts


def write_corpus(path: Path, pool: list[str], rows: int) -> Path:
    """`rows` rows of id,text: the pool repeated (cycling)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([f"{i + 1:0{ID_DIGITS}d}", pool[i % len(pool)]] for i in range(rows))
    return path


def read_column(path: Path, column: str, rows: int | None = None) -> list[str]:
    """One column of a CSV with a header, its first `rows` rows (all when None)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [row[column] for row in itertools.islice(csv.DictReader(handle), rows)]


def write_slice(source: Path, target: Path, rows: int) -> Path:
    """The first `rows` data rows of a CSV, header kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, newline="", encoding="utf-8") as handle, open(target, "w", newline="", encoding="utf-8") as sink:
        reader, writer = csv.reader(handle), csv.writer(sink)
        writer.writerow(next(reader))
        writer.writerows(itertools.islice(reader, rows))
    return target


def ensure_model(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """--model, or a MiniLM trained on an SST-2 slice (reused when OUTPUT_DIR/model is already complete)."""
    if args.model:
        return {"path": str(Path(args.model).resolve()), "source": "given (--model)", "validation_file": None}
    folder = out / "model"
    sst2 = args.data_root / "sst2"
    validation = write_slice(
        sst2 / "validation.csv", out / "data" / f"sst2_validation_{VALIDATION_ROWS}.csv", VALIDATION_ROWS
    )
    model = {"path": str(folder), "validation_file": str(validation)}
    if (folder / "metrics.json").is_file():
        return {**model, "source": f"trained by an earlier run of this script ({folder}), reused"}
    train = write_slice(sst2 / "train.csv", out / "data" / f"sst2_train_{TRAIN_ROWS}.csv", TRAIN_ROWS)
    print(f"No --model: training the bundled MiniLM on {train} into {folder} ...", file=sys.stderr, flush=True)
    argv = [*program(), "train", "--output-dir", str(folder), "--train-file", str(train)]
    argv += ["--validation-file", str(validation), "--num-train-epochs", "1", "--disable-tqdm", "true"]
    child = run_child(argv, out / "logs" / "train.log").check()
    how = f"trained here: first {TRAIN_ROWS:,} rows of SST-2 train.csv, 1 epoch, MiniLM"
    return {**model, "source": how, "train_seconds": round(child.seconds, 1)}


def export_int8(model: dict[str, Any], args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """`nlp-transfer export --quantize int8` of the folder, timed; the verification's agreement from its report."""
    folder = out / "export_int8"
    argv = [*program(), "export", "--model", model["path"], "--output-dir", str(folder), "--quantize", "int8"]
    argv += ["--no-latency", "--overwrite-output-dir"]
    validation = args.export_validation_file or model.get("validation_file")
    argv += ["--validation-file", str(validation)] if validation else []
    print(f"Exporting {model['path']} to ONNX int8 ...", file=sys.stderr, flush=True)
    child = run_child(argv, out / "logs" / "export.log").check()
    report = json.loads((folder / "export_report.json").read_text(encoding="utf-8"))
    forms = {name: form.get("label_agreement") for name, form in report.get("forms", {}).items()}
    checked = report.get("validation", {})
    return {
        "path": str(folder),
        "seconds": round(child.seconds, 1),
        "agreement_on_validation": forms,
        "validation": {"file": checked.get("file"), "rows": checked.get("rows")},
    }


# ------------------------------------------------------------------------------------------------ predict --file


def predict_argv(folder: str, corpus: Path, output: Path, args: argparse.Namespace, chunk_rows: int) -> list[str]:
    argv = [*program(), "predict", "--model", folder, "--file", str(corpus), "--output", str(output)]
    argv += ["--keep-columns", "id", "--chunk-rows", str(chunk_rows), "--batch-size", str(args.batch_size)]
    return [*argv, "--quiet", "--device", "cpu"]


def clear_output(output: Path) -> None:
    """A fresh start: no earlier output, no partial folder of an earlier run."""
    output.unlink(missing_ok=True)
    shutil.rmtree(partial_folder(output), ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)


def partial_folder(output: Path) -> Path:
    return output.parent / f".{output.name}.partial"


def parse_summary(text: str) -> dict[str, Any]:
    """The numbers of `predict --file`'s summary line (stderr)."""
    found = list(SUMMARY.finditer(text))
    if not found:
        raise RuntimeError(f"No summary line found in the output of predict --file:\n{text[-2000:]}")
    match = found[-1]

    def number(name: str) -> int:
        return int((match.group(name) or "0").replace(",", ""))

    seconds = float(match.group("seconds"))
    here = number("here")
    return {
        "rows": number("rows"),
        "predicted": number("predicted"),
        "rows_from_interrupted_run": number("resumed"),
        "predicted_here": here,
        "loop_seconds": seconds,
        "texts_per_s": round(here / seconds, 1) if seconds else None,
    }


def predict_file(
    folder: str, corpus: Path, output: Path, args: argparse.Namespace, name: str, chunk_rows: int | None = None
) -> dict[str, Any]:
    """One uninterrupted `predict --file` run (--chunk-rows unless `chunk_rows`): its summary, time and peak RSS."""
    clear_output(output)
    print(f"predict --file {corpus.name} -> {output.name} ({name}) ...", file=sys.stderr, flush=True)
    argv = predict_argv(folder, corpus, output, args, chunk_rows or args.chunk_rows)
    child = run_child(argv, args.output_dir / "logs" / f"{name}.log").check()
    summary = parse_summary(child.output())
    timing = {"wall_seconds": round(child.seconds, 1), "cpu_seconds": round(child.cpu_seconds, 1)}
    return {**summary, **timing, "peak_rss_mib": round(child.peak_rss_mib, 1)}


def count_csv_rows(path: Path, header: bool = True) -> int:
    with open(path, newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - (1 if header else 0)


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ the sections


def memory_section(args: argparse.Namespace, folders: dict[str, str], corpora: dict[int, Path]) -> dict[str, Any]:
    """Peak RSS of `predict --file` on the small and the large corpus, same engine; the outputs counted, deleted."""
    engine, runs = args.memory_engine, []
    for rows in (args.small_rows, args.rows):
        output = args.output_dir / "memory" / f"predictions_{rows}.csv"
        run = predict_file(folders[engine], corpora[rows], output, args, f"memory_{engine}_{rows}")
        runs.append({"rows": rows, **run, "rows_written": count_csv_rows(output)})
        output.unlink()
    ratio = runs[1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]
    met = ratio <= TARGETS["memory_ratio"] and all(run["rows_written"] == run["rows"] for run in runs)
    return {"engine": engine, "runs": runs, "ratio": round(ratio, 3), "target": TARGETS["memory_ratio"], "met": met}


def speed_section(args: argparse.Namespace, folders: dict[str, str], corpus: Path) -> dict[str, Any]:
    """The torch engine, transformers.pipeline at each batch size and the int8 engine on the same rows."""
    out = args.output_dir / "speed"
    engines = {}
    for engine in ENGINES:
        engines[engine] = predict_file(folders[engine], corpus, out / f"{engine}.csv", args, f"speed_{engine}")
    spec = {"model": folders["torch"], "corpus": str(corpus), "rows": args.speed_rows}
    print("transformers.pipeline at each batch size ...", file=sys.stderr, flush=True)
    pipeline, child = run_worker("pipeline", {**spec, "batch_sizes": args.pipeline_batch_sizes}, args.output_dir)
    pipeline.update(peak_rss_mib=round(child.peak_rss_mib, 1), cpu_seconds=round(child.cpu_seconds, 1))
    in_memory_rows = min(IN_MEMORY_ROWS, args.speed_rows)
    print(f"load_classifier(...).predict on the first {in_memory_rows:,} rows ...", file=sys.stderr, flush=True)
    spec = {**spec, "rows": in_memory_rows, "batch_size": args.batch_size}
    in_memory, _ = run_worker("in-memory", spec, args.output_dir)
    labels = {engine: read_column(out / f"{engine}.csv", "label") for engine in ENGINES}
    return speed_figures(engines, pipeline, labels, in_memory["labels"], args.batch_size)


def share_same(first: list[Any], second: list[Any]) -> float:
    if len(first) != len(second) or not first:
        return 0.0
    return sum(a == b for a, b in zip(first, second)) / len(first)


def speed_figures(
    engines: dict[str, dict[str, Any]],
    pipeline: dict[str, Any],
    labels: dict[str, list[str]],
    in_memory: list[str],
    batch_size: int,
) -> dict[str, Any]:
    """Rates, ratios against the pipeline's best batch size, label agreements, and each against its target."""
    best = max(pipeline["batch_sizes"].values(), key=lambda entry: entry["texts_per_s"])
    reference = best["texts_per_s"]
    figures = {
        "torch_vs_pipeline": engines["torch"]["texts_per_s"] / reference,
        "int8_vs_pipeline": engines["onnx-int8"]["texts_per_s"] / reference,
        "int8_same_as_torch": share_same(labels["onnx-int8"], labels["torch"]),
        "file_same_as_in_memory": share_same(labels["torch"][: len(in_memory)], in_memory),
    }
    checks = {
        name: {"value": round(value, 4), "target": TARGETS[name], "met": value >= TARGETS[name]}
        for name, value in figures.items()
    }
    pipeline_labels = pipeline.pop("labels")
    return {
        "batch_size": batch_size,
        "engines": engines,
        "pipeline": {**pipeline, "best_batch_size": best["batch_size"]},
        "checks": checks,
        "in_memory_rows": len(in_memory),
        "pipeline_labels_same_as_torch": round(share_same(pipeline_labels, labels["torch"]), 4),
    }


def written_parts(folder: Path) -> list[Path]:
    """The part files of a partial folder, consecutive from the first (as `--resume` counts them)."""
    names = {match.group(1) for path in folder.glob("part-*") if (match := PART.fullmatch(path.name))}
    parts = []
    while f"{len(parts):06d}" in names:
        parts.append(folder / f"part-{len(parts):06d}")
    return parts


def kill_midway(argv: list[str], output: Path, goal: int, log: Path) -> dict[str, Any]:
    """Start the run, SIGKILL it once `goal` part files exist; the rows written before the kill, from the parts."""
    folder = partial_folder(output)
    process, started = start(argv, log)
    while (child := finish(process, started, log, os.WNOHANG)) is None:
        if len(written_parts(folder)) >= goal:
            os.kill(process.pid, signal.SIGKILL)
            child = finish(process, started, log)
            break
        time.sleep(0.02)
    assert child is not None
    killed = child.returncode == -signal.SIGKILL
    if not killed:
        child.check()  # a failure is an error; a run that finished before the kill leaves nothing to resume
    parts = written_parts(folder)
    rows = sum(count_csv_rows(part, header=False) for part in parts)
    return {"killed": killed, "seconds_before_kill": round(child.seconds, 1), "parts": len(parts), "rows": rows}


def resume_chunk_rows(args: argparse.Namespace) -> int:
    """--chunk-rows, unless it would cut --small-rows into fewer than 4 chunks (a smoke run): then a tenth of it."""
    if math.ceil(args.small_rows / args.chunk_rows) >= 4:
        return args.chunk_rows
    chunk_rows = max(1, math.ceil(args.small_rows / 10))
    print(
        f"resume: --chunk-rows {args.chunk_rows} cuts {args.small_rows:,} rows into fewer than 4 chunks; "
        f"this section uses --chunk-rows {chunk_rows}.",
        file=sys.stderr,
    )
    return chunk_rows


def resume_section(args: argparse.Namespace, folder: str, corpus: Path) -> dict[str, Any]:
    """An uninterrupted run; a run killed at about half its chunks and continued with --resume; both files' md5."""
    out, rows = args.output_dir / "resume", args.small_rows
    chunk_rows = resume_chunk_rows(args)
    chunks = math.ceil(rows / chunk_rows)
    whole = predict_file(folder, corpus, out / "uninterrupted.csv", args, "resume_uninterrupted", chunk_rows)
    output = out / "resumed.csv"
    clear_output(output)
    argv = predict_argv(folder, corpus, output, args, chunk_rows)
    print(f"predict --file {corpus.name}, killed at {chunks // 2} of {chunks} chunks ...", file=sys.stderr, flush=True)
    killed = kill_midway(argv, output, max(1, chunks // 2), args.output_dir / "logs" / "resume_killed.log")
    resumed = run_child([*argv, "--resume"], args.output_dir / "logs" / "resume_resumed.log").check()
    summary = parse_summary(resumed.output())
    md5s = {"uninterrupted": md5(out / "uninterrupted.csv"), "resumed": md5(output)}
    expected = rows - killed["rows"]
    return {
        "engine": args.resume_engine,
        "chunk_rows_option": args.chunk_rows,
        "rows": rows,
        "chunk_rows": chunk_rows,
        "chunks": chunks,
        "uninterrupted": whole,
        "kill": killed,
        "resumed": {**summary, "wall_seconds": round(resumed.seconds, 1)},
        "md5": md5s,
        "md5_equal": md5s["uninterrupted"] == md5s["resumed"],
        "expected_predicted_by_resume": expected,
        "predicted_by_resume_equal": summary["predicted_here"] == expected,
        "met": killed["killed"] and md5s["uninterrupted"] == md5s["resumed"] and summary["predicted_here"] == expected,
    }


# ------------------------------------------------------------------------------------------------ workers


def pipeline_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """transformers.pipeline over a KeyDataset of the texts at each batch size (a warm-up first), timed."""
    import torch
    from datasets import Dataset
    from transformers import pipeline
    from transformers.pipelines.pt_utils import KeyDataset

    import nlp_transfer  # noqa: F401  registers the package's pooled heads with transformers' Auto classes

    texts = read_column(Path(spec["corpus"]), "text", spec["rows"])
    classify = pipeline("text-classification", model=spec["model"], device="cpu")
    settings = json.loads((Path(spec["model"]) / "config.json").read_text(encoding="utf-8")).get("nlp_transfer", {})
    reading = {"truncation": True, **({"max_length": settings["max_length"]} if "max_length" in settings else {})}
    classify(texts[:64], batch_size=8, **reading)  # warm-up
    dataset = KeyDataset(Dataset.from_dict({"text": texts}), "text")
    results, labels = {}, {}
    for batch_size in spec["batch_sizes"]:
        started, cpu = time.perf_counter(), time.process_time()
        labels[batch_size] = [output["label"] for output in classify(dataset, batch_size=batch_size, **reading)]
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        rate = round(len(texts) / seconds, 1)
        results[str(batch_size)] = {
            "batch_size": batch_size,
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "texts_per_s": rate,
        }
        print(f"pipeline batch {batch_size}: {rate} texts/s", file=sys.stderr, flush=True)
    best = max(results.values(), key=lambda entry: entry["texts_per_s"])["batch_size"]
    return {
        "rows": len(texts),
        "torch_threads": torch.get_num_threads(),
        "batch_sizes": results,
        "labels": labels[best],
    }


def in_memory_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """load_classifier(DIR).predict(texts) on the first rows, all in memory."""
    from nlp_transfer import load_classifier

    texts = read_column(Path(spec["corpus"]), "text", spec["rows"])
    predictions = load_classifier(spec["model"], "cpu").predict(texts, batch_size=spec["batch_size"])
    return {"labels": [prediction["label"] for prediction in predictions]}


WORKERS = {"pipeline": pipeline_worker, "in-memory": in_memory_worker}


def worker_main(mode: str, spec: str, result: str) -> int:
    Path(result).write_text(json.dumps(WORKERS[mode](json.loads(spec))), encoding="utf-8")
    return 0


# ------------------------------------------------------------------------------------------------ the report


def machine() -> dict[str, Any]:
    """The CPU, its cores, the threads torch uses and the versions that matter."""
    import torch

    cpu = "unknown"
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
    except OSError:
        pass
    packages = ("nlp-transfer", "torch", "transformers", "datasets", "onnxruntime", "pyarrow")
    return {
        "cpu": cpu,
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "onnxruntime_threads": "onnxruntime's default (one per physical core)",
        "python": sys.version.split()[0],
        "versions": {name: _version(name) for name in packages},
        "git": _git_commit(),
    }


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    """The commit, read only (rev-parse, status): nothing in the repository is changed."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO_ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + (" with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def _num(value: Any, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else "-"


def _met(met: bool) -> str:
    return "met" if met else "MISSED"


def setup_table(results: dict[str, Any]) -> str:
    model, export, settings = results["model"], results.get("export"), results["settings"]
    trained = f" in {_num(model['train_seconds'])} s" if "train_seconds" in model else ""
    rows = [
        ["model", f"{model['path']} ({model['source']}{trained})"],
        ["corpus", f"{', '.join(SOURCES)} of {settings['data_root']}, shuffled (seed 0), cycled; id,text CSV"],
        ["predict --file", f"--chunk-rows {settings['chunk_rows']} --batch-size {settings['batch_size']}, CPU"],
    ]
    if export:
        agreement = ", ".join(
            f"{name} {_num(100 * value, 2)}%" for name, value in export["agreement_on_validation"].items()
        )
        checked = export["validation"]
        where = f"{checked['rows']} rows of {checked['file']}" if checked.get("rows") else "its validation rows"
        value = f"{export['path']} in {_num(export['seconds'])} s; decisions equal to PyTorch's on {where}: {agreement}"
        rows.append(["ONNX int8 export (--no-latency)", value])
    rows.append(["sections run", ", ".join(name for name in SECTIONS if name in results) or "none"])
    return markdown_table(["item", "value"], rows)


def memory_table(memory: dict[str, Any]) -> str:
    headers = ["engine", "rows", "peak RSS (MiB)", "process wall (s)", "predict loop texts/s", "rows written"]
    rows = [
        [
            memory["engine"],
            f"{run['rows']:,}",
            _num(run["peak_rss_mib"]),
            _num(run["wall_seconds"]),
            _num(run["texts_per_s"]),
            f"{run['rows_written']:,}",
        ]
        for run in memory["runs"]
    ]
    small, large = memory["runs"]
    verdict = (
        f"Peak RSS at {large['rows']:,} rows / at {small['rows']:,} rows ({memory['engine']} engine): "
        f"{memory['ratio']:.3f}x (target <= {memory['target']}x: {_met(memory['met'])})."
    )
    return markdown_table(headers, rows) + "\n\n" + verdict


CHECK_NAMES = {
    "torch_vs_pipeline": "torch engine / pipeline (best batch size), texts/s",
    "int8_vs_pipeline": "ONNX int8 engine / pipeline (best batch size), texts/s",
    "int8_same_as_torch": "labels of the int8 engine equal to the torch engine's",
    "file_same_as_in_memory": "labels of predict --file equal to load_classifier(DIR).predict in memory",
}


def speed_tables(speed: dict[str, Any]) -> str:
    engines, pipeline = speed["engines"], speed["pipeline"]
    best = pipeline["batch_sizes"][str(pipeline["best_batch_size"])]["texts_per_s"]
    batch = str(speed["batch_size"])

    def row(name: str, batch: str, rate: float, rss: float, seconds: float) -> list[str]:
        return [name, batch, _num(rate), f"{rate / best:.2f}x", _num(rss), _num(seconds)]

    rows = []
    for engine, title in (("torch", "torch: predict --file"), ("onnx-int8", "ONNX int8: predict --file")):
        run = engines[engine]
        rows.append(row(title, batch, run["texts_per_s"], run["peak_rss_mib"], run["loop_seconds"]))
    for entry in pipeline["batch_sizes"].values():
        name = "transformers.pipeline" + (" (best)" if entry["batch_size"] == pipeline["best_batch_size"] else "")
        rows.insert(
            -1, row(name, str(entry["batch_size"]), entry["texts_per_s"], pipeline["peak_rss_mib"], entry["seconds"])
        )
    headers = ["engine", "batch size", "texts/s", "vs pipeline (best)", "peak RSS (MiB)", "timed (s)"]
    note = (
        f"{pipeline['rows']:,} rows each. predict --file: the rate of its summary line (read, predict, write); "
        "pipeline: its loop over a KeyDataset, after a warm-up; its peak RSS is its worker's, all batch sizes in one "
        f"process; torch threads in the pipeline worker: {pipeline['torch_threads']}."
    )
    return "\n\n".join([markdown_table(headers, rows), note, checks_table(speed)])


def checks_table(speed: dict[str, Any]) -> str:
    rows = [
        [
            CHECK_NAMES[name],
            _check_value(name, check["value"]),
            _check_value(name, check["target"], ">= "),
            _met(check["met"]),
        ]
        for name, check in speed["checks"].items()
    ]
    share = _check_value("share", speed["pipeline_labels_same_as_torch"])
    rows.append(
        ["labels of the pipeline (best batch size) equal to the torch engine's (for information)", share, "-", "-"]
    )
    note = f"In memory: the first {speed['in_memory_rows']:,} rows, against the same rows of the torch engine's file."
    return markdown_table(["check", "value", "target", "verdict"], rows) + "\n\n" + note


def _check_value(name: str, value: float, prefix: str = "") -> str:
    return f"{prefix}{value:.2f}x" if name.endswith("pipeline") else f"{prefix}{100 * value:.2f}%"


def resume_table(resume: dict[str, Any]) -> str:
    kill, resumed, md5s = resume["kill"], resume["resumed"], resume["md5"]
    rows = [
        ["engine, rows, chunks", f"{resume['engine']}, {resume['rows']:,} rows, {resume['chunks']} chunks"],
        ["--chunk-rows", _chunk_rows_note(resume)],
        ["uninterrupted run", f"{_num(resume['uninterrupted']['wall_seconds'])} s, md5 {md5s['uninterrupted']}"],
        [
            "killed (SIGKILL)",
            f"{'yes' if kill['killed'] else 'NO: it finished first'} after {kill['seconds_before_kill']} s",
        ],
        ["rows written before the kill", f"{kill['rows']:,} ({kill['parts']} part files)"],
        ["rows predicted by the resumed run (summary line)", f"{resumed['predicted_here']:,}"],
        ["rows from the interrupted run (summary line)", f"{resumed['rows_from_interrupted_run']:,}"],
        ["expected: all rows - rows before the kill", f"{resume['expected_predicted_by_resume']:,}"],
        ["resumed output", f"{_num(resumed['wall_seconds'])} s, md5 {md5s['resumed']}"],
        ["md5 equal", "yes" if resume["md5_equal"] else "NO"],
        ["verdict", _met(resume["met"])],
    ]
    return markdown_table(["figure", "value"], rows)


def _chunk_rows_note(resume: dict[str, Any]) -> str:
    given = resume.get("chunk_rows_option", resume["chunk_rows"])
    if resume["chunk_rows"] == given:
        return str(given)
    return f"{resume['chunk_rows']} (--chunk-rows {given} would cut the rows into fewer than 4 chunks)"


def report_markdown(results: dict[str, Any]) -> str:
    host = results["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in host["versions"].items())
    parts = [
        "# Corpus prediction: memory, speed, kill and resume",
        f"Produced by `{results['command']}` (from {results['cwd']}), {results['date']}; "
        f"{_num(results.get('wall_seconds'), 0)} s in all.",
        f"Machine: {host['nproc']} cores (nproc), {host['cpu']}; torch threads {host['torch_threads']}, "
        f"onnxruntime threads: {host['onnxruntime_threads']}; Python {host['python']}; {versions}; git {host['git']}.",
        "## Setup",
        setup_table(results),
    ]
    titles = {
        "memory": "## Memory: peak RSS of predict --file",
        "speed": "## Speed on the same rows",
        "resume": "## Kill and resume",
    }
    tables = {"memory": memory_table, "speed": speed_tables, "resume": resume_table}
    for name in SECTIONS:
        if name in results:
            parts += [titles[name], tables[name](results[name])]
    return "\n\n".join(parts) + "\n"


def write_outputs(results: dict[str, Any], out: Path) -> str:
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    report = report_markdown(results)
    (out / "results.md").write_text(report, encoding="utf-8")
    return report


# ------------------------------------------------------------------------------------------------ options and main


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"choose among {','.join(SECTIONS)} (not {', '.join(unknown)})")
    return names


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated integers, e.g. 1,8,32,64 (not {text!r})") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("give at least one batch size, each at least 1")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--output-dir", type=Path, required=True, help="Where the corpus files, runs and results go (not the repo).")
    add("--model", help="A folder written by 'nlp-transfer train' (default: train one first, see above).")
    add("--data-root", type=Path, default=REPO_ROOT.parent / "shared" / "data", help="Holds sst2/ and ag_news/.")
    add("--rows", type=int, default=1_000_000, help="Rows of the large corpus (memory; default 1,000,000).")
    add("--small-rows", type=int, default=60_000, help="Rows of the small corpus (memory, resume; default 60,000).")
    add("--speed-rows", type=int, default=20_000, help="Rows every engine predicts in the speed section (20,000).")
    add("--memory-engine", choices=ENGINES, default="onnx-int8", help="Engine of the memory section (onnx-int8).")
    add("--resume-engine", choices=ENGINES, default="onnx-int8", help="Engine of the resume section (onnx-int8).")
    add("--pipeline-batch-sizes", type=_sizes, default=[1, 8, 32, 64], help="Pipeline batch sizes (1,8,32,64).")
    add("--chunk-rows", type=int, default=4096, help="predict --chunk-rows (default 4096, the package's).")
    add("--batch-size", type=int, default=32, help="predict --batch-size and in-memory predict's (default 32).")
    add("--export-validation-file", help="Labelled file the int8 export is verified on (default: the folder's).")
    add("--skip", type=_names, default=[], help="Comma-separated sections to leave out: memory,speed,resume.")
    return parser


def check_args(args: argparse.Namespace) -> str | None:
    """A problem with the options, before anything runs."""
    if min(args.rows, args.small_rows, args.speed_rows, args.chunk_rows, args.batch_size) < 1:
        return "--rows, --small-rows, --speed-rows, --chunk-rows and --batch-size must be at least 1"
    if args.model and not (Path(args.model) / "config.json").is_file():
        return f"--model {args.model} is not a trained folder (no config.json)"
    out = args.output_dir.resolve()
    if out.is_relative_to(REPO_ROOT) and not _git_ignored(out):
        return f"--output-dir {args.output_dir} is inside the repository and not git-ignored; use e.g. runs/..."
    missing = [name for name in SOURCES if not (args.data_root / name).is_file()]
    return f"missing under --data-root {args.data_root}: {', '.join(missing)}" if missing else None


def _git_ignored(path: Path) -> bool:
    done = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO_ROOT, capture_output=True)
    return done.returncode == 0


def needs(args: argparse.Namespace, engine: str) -> bool:
    """Whether a section that is run uses `engine`."""
    wanted = {"speed": set(ENGINES), "memory": {args.memory_engine}, "resume": {args.resume_engine}}
    return any(engine in engines for section, engines in wanted.items() if section not in args.skip)


def build_corpora(args: argparse.Namespace) -> dict[int, Path]:
    """One CSV per size a section reads, each a prefix of the same cycled sequence."""
    sizes = set()
    sizes |= {args.small_rows, args.rows} if "memory" not in args.skip else set()
    sizes |= {args.speed_rows} if "speed" not in args.skip else set()
    sizes |= {args.small_rows} if "resume" not in args.skip else set()
    pool = text_pool(args.data_root) if sizes else []
    corpora = {}
    for rows in sorted(sizes):
        print(f"Writing the corpus of {rows:,} rows ...", file=sys.stderr, flush=True)
        corpora[rows] = write_corpus(args.output_dir / "data" / f"corpus_{rows}.csv", pool, rows)
    return corpora


def run_sections(args: argparse.Namespace, results: dict[str, Any], folders: dict[str, str], started: float) -> str:
    corpora = build_corpora(args)
    runners = {
        "memory": lambda: memory_section(args, folders, corpora),
        "speed": lambda: speed_section(args, folders, corpora[args.speed_rows]),
        "resume": lambda: resume_section(args, folders[args.resume_engine], corpora[args.small_rows]),
    }
    report = write_outputs(results, args.output_dir)
    for name in SECTIONS:
        if name not in args.skip:
            print(f"== {name} ==", file=sys.stderr, flush=True)
            results[name] = runners[name]()
            results["wall_seconds"] = round(time.perf_counter() - started, 1)
            report = write_outputs(results, args.output_dir)
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        return worker_main(*argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if problem := check_args(args):
        parser.error(problem)
    args.output_dir = args.output_dir.resolve()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    results: dict[str, Any] = {
        "command": shlex.join(["python", sys.argv[0], *argv]),
        "cwd": os.getcwd(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": settings,
        "targets": TARGETS,
    }
    results["model"] = ensure_model(args, args.output_dir)
    folders = {"torch": results["model"]["path"]}
    if needs(args, "onnx-int8"):
        results["export"] = export_int8(results["model"], args, args.output_dir)
        folders["onnx-int8"] = results["export"]["path"]
    report = run_sections(args, results, folders, started)
    print(report)
    print(f"Wrote {args.output_dir / 'results.json'} and {args.output_dir / 'results.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
