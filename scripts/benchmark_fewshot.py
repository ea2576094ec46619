"""Few labels: the package's default run (and any strategy) against SetFit on the same backbone, same draws.

    python scripts/benchmark_fewshot.py --output-root runs/fewshot --data-root ../shared/data \
        --datasets sst2,ag_news --sizes 16,64 --seeds 0,1,2 --setfit-python /path/to/setfit-venv/bin/python

For every dataset x size x seed, a balanced training set (size / classes rows per class, drawn from the
dataset's train.csv with that seed) is written once and given to every system; each is scored on the
dataset's fixed test.csv (or, with --max-test N, on one fixed subset of it, the same for every system).
The package's runs are `nlp-transfer train --train-file DRAW --test-file TEST [--strategy S]` at its
defaults (a validation split is carved from the draw, as for any user with only those labels). System
`allrows` measures the fixed recipe the few-label issue proposed: every row of the draw trains (the draw is
also given as the validation file, so nothing is carved), no evaluation during training, the last model kept.

SetFit is a peer, never a dependency of the package: install it in a virtualenv of its own (torch first,
then `pip install setfit==1.2.0`) and pass that environment's python as --setfit-python; without it the
SetFit rows are skipped. `scripts/setfit_worker.py` runs there with SetFit's default training arguments and
the bundled MiniLM (sentence-transformers/all-MiniLM-L6-v2) as the body.

Results go to OUTPUT_ROOT/results.jsonl, one line per run; a re-run skips the runs already there. To keep an
older version's rows beside the current one's, rename their system in that file (BENCHMARKS.md shows
`default-0.1`, the defaults before pooling and recipes, next to `default`). The table
printed at the end has the mean and standard deviation over seeds of the test accuracy and macro-F1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nlp_transfer.cli.app import main as nlp_transfer_cli
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.modeling.checkpoints import bundled_model_path
from nlp_transfer.tables import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/csv_rows.py (scripts/ is not a package)
from csv_rows import read_rows, write_rows  # noqa: E402

SETFIT_WORKER = Path(__file__).with_name("setfit_worker.py")


def balanced_draw(rows: list[dict[str, str]], size: int, seed: int) -> list[dict[str, str]]:
    """`size` rows, the same number per class (size // classes), drawn with `seed`; in a shuffled order."""
    labels = sorted({row["label"] for row in rows})
    per_class, rng = size // len(labels), np.random.default_rng(seed)
    chosen = []
    for label in labels:
        members = [i for i, row in enumerate(rows) if row["label"] == label]
        chosen += rng.choice(members, size=per_class, replace=False).tolist()
    return [rows[i] for i in rng.permutation(chosen)]


def fixed_test(source: Path, folder: Path, limit: int | None) -> Path:
    """The test file, or one fixed random subset of `limit` rows of it (seed 0), shared by every system."""
    if limit is None:
        return source
    rows = read_rows(source)
    if limit >= len(rows):
        return source
    keep = sorted(np.random.default_rng(0).choice(len(rows), size=limit, replace=False).tolist())
    return write_rows(folder / "test.csv", [rows[i] for i in keep], ["text", "label"])


def run_package(strategy: str, train: Path, test: Path, folder: Path, seed: int) -> dict[str, float]:
    argv = ["train", "--train-file", str(train), "--test-file", str(test), "--output-dir", str(folder)]
    argv += ["--overwrite-output-dir", "true", "--seed", str(seed), "--disable-tqdm", "true"]
    if strategy == "allrows":  # every row trains, no evaluation during training, the last model kept
        argv += ["--validation-file", str(train), "--eval-strategy", "no", "--save-strategy", "no"]
        argv += ["--load-best-model-at-end", "false"]
    elif strategy != "default":
        argv += ["--strategy", strategy]
    if nlp_transfer_cli(argv) != 0:
        raise RuntimeError(f"nlp-transfer train failed for {folder}")
    record = RunRecord.load(folder)
    assert record.test is not None
    return {
        "accuracy": record.test["accuracy"],
        "macro_f1": record.test["macro_f1"],
        "train_s": record.train_runtime_s or 0.0,
        "epochs": record.epochs,
        "learning_rate": record.hyperparameters.learning_rate,
        "pooling": (record.pooling or {}).get("mode"),
    }


def run_setfit(python: str, train: Path, test: Path, seed: int) -> dict[str, float]:
    command = [python, str(SETFIT_WORKER), "--model", str(bundled_model_path()), "--train-file", str(train)]
    command += ["--test-file", str(test), "--seed", str(seed)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"SetFit failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.setdefault("wall_s", time.perf_counter() - started)
    return result


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def summary_rows(results: list[dict]) -> list[list[str]]:
    """One row per dataset x size x system: mean +- std over seeds of accuracy and macro-F1, mean train time."""
    cells: dict[tuple, list[dict]] = {}
    for result in results:
        cells.setdefault((result["dataset"], result["size"], result["system"]), []).append(result)
    rows = []
    for (dataset, size, system), runs in sorted(cells.items(), key=lambda item: (item[0][0], item[0][1], item[0][2])):
        rows.append(
            [
                dataset,
                str(size),
                system,
                _mean_std([run["accuracy"] for run in runs]),
                _mean_std([run["macro_f1"] for run in runs]),
                f"{statistics.mean(run['train_s'] for run in runs):.0f}",
                str(len(runs)),
            ]
        )
    return rows


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {spread:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-root", required=True, help="Folder for the draws, the runs and results.jsonl.")
    parser.add_argument("--data-root", default="../shared/data", help="Folder holding DATASET/train.csv, test.csv.")
    parser.add_argument("--datasets", default="sst2,ag_news", help="Comma-separated dataset folders.")
    parser.add_argument("--sizes", default="16,64,256", help="Comma-separated training-set sizes (balanced).")
    parser.add_argument("--seeds", default="0,1,2", help="Comma-separated seeds (one draw and one run each).")
    parser.add_argument("--systems", default="default,setfit", help="default, allrows, a strategy name, or setfit.")
    parser.add_argument("--setfit-python", help="python of a virtualenv with setfit==1.2.0 (see the docstring).")
    parser.add_argument("--max-test", type=int, help="Score on one fixed random subset of this many test rows.")
    args = parser.parse_args()

    root, results_file = Path(args.output_root), Path(args.output_root) / "results.jsonl"
    done = {(r["dataset"], r["size"], r["seed"], r["system"]) for r in load_results(results_file)}
    for dataset in args.datasets.split(","):
        source = Path(args.data_root) / dataset
        train_rows = read_rows(source / "train.csv")
        test = fixed_test(source / "test.csv", root / "data" / dataset, args.max_test)
        for size in (int(s) for s in args.sizes.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                draw = root / "data" / dataset / str(size) / f"seed{seed}.csv"
                write_rows(draw, balanced_draw(train_rows, size, seed), ["text", "label"])
                for system in args.systems.split(","):
                    key = (dataset, size, seed, system)
                    if key in done or (system == "setfit" and not args.setfit_python):
                        continue
                    print(f"=== {dataset} size {size} seed {seed}: {system}", flush=True)
                    if system == "setfit":
                        figures = run_setfit(args.setfit_python, draw, test, seed)
                    else:
                        folder = root / "runs" / dataset / str(size) / f"seed{seed}" / system
                        figures = run_package(system, draw, test, folder, seed)
                    line = {"dataset": dataset, "size": size, "seed": seed, "system": system, **figures}
                    with open(results_file, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(line) + "\n")
    headers = ["dataset", "labels", "system", "test accuracy", "test macro-F1", "train time (s)", "seeds"]
    print(markdown_table(headers, summary_rows(load_results(results_file))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
