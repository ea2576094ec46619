"""Active learning, simulated on public data: `nlp-transfer suggest` against random draws, the package's defaults
retrained each round.

    python scripts/benchmark_active_learning.py --output-root runs/al --datasets ag_news,sst2_imbalanced \
        --sizes 16,32,64,128,256 --seeds 0

For each data set and seed, a pool is drawn from its train.csv (--pool-size rows; `sst2_imbalanced`: SST-2 at one
positive per nine negatives, as in BENCHMARKS' imbalance section) and a fixed test set from its test.csv (--max-test
rows, seed 0). Each arm starts with --sizes[0] labels and grows to each next size:
- `random`: the labels are a random draw from the pool (the first labels too);
- `suggest`: the first labels are suggest's cold start (typiclust, no model), each later batch is `suggest --model`
  of the previous round's classifier (cluster-margin, the default; or --strategy), never a labelled text again.
Labels come from the pool file's own label column (the oracle). Every round trains `nlp-transfer train` at its
defaults on the labels so far and scores the test set; results.jsonl holds one line per arm x round and the run
resumes where it stops. The table: mean +- std over seeds of test accuracy and macro-F1 per size; the plot:
one panel per data set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from nlp_transfer.cli.app import main as nlp_transfer_cli
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.labels.suggest import SuggestOptions, suggest
from nlp_transfer.tables import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/csv_rows.py (scripts/ is not a package)
from csv_rows import read_rows, write_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SOURCES = {"sst2": "sst2", "ag_news": "ag_news", "sst2_imbalanced": "sst2"}


def make_pool(dataset: str, data_root: Path, size: int, seed: int) -> list[dict[str, str]]:
    """`size` rows of the data set's train.csv drawn with `seed` (imbalanced: 1 positive per 9 negatives)."""
    rows = read_rows(data_root / SOURCES[dataset] / "train.csv")
    rng = np.random.default_rng(seed)
    if dataset == "sst2_imbalanced":
        positives = [r for r in rows if r["label"] == "1"]
        negatives = [r for r in rows if r["label"] != "1"]
        minority = size // 10
        chosen = [positives[i] for i in rng.choice(len(positives), minority, replace=False)]
        chosen += [negatives[i] for i in rng.choice(len(negatives), size - minority, replace=False)]
        return [chosen[i] for i in rng.permutation(len(chosen))]
    return [rows[i] for i in rng.choice(len(rows), size, replace=False)]


def test_file(dataset: str, data_root: Path, folder: Path, limit: int) -> Path:
    rows = read_rows(data_root / SOURCES[dataset] / "test.csv")
    if limit < len(rows):
        rows = [rows[i] for i in sorted(np.random.default_rng(0).choice(len(rows), limit, replace=False))]
    return write_rows(folder / "test.csv", rows)


def train(labelled: Path, test: Path, folder: Path, seed: int) -> dict[str, float]:
    argv = ["train", "--train-file", str(labelled), "--test-file", str(test), "--output-dir", str(folder)]
    argv += ["--overwrite-output-dir", "true", "--seed", str(seed), "--disable-tqdm", "true"]
    if nlp_transfer_cli(argv) != 0:
        raise RuntimeError(f"nlp-transfer train failed for {folder}")
    record = RunRecord.load(folder)
    return {"accuracy": record.test["accuracy"], "macro_f1": record.test["macro_f1"]}


def single_class_figures(label: str, test: Path) -> dict[str, float]:
    """What a user with labels of one class has: every text given that class (accuracy = its share of the test)."""
    truth = [r["label"] for r in read_rows(test)]
    accuracy = sum(t == label for t in truth) / len(truth)
    classes = sorted(set(truth) | {label})
    f1 = [2 * accuracy / (1 + accuracy) if c == label else 0.0 for c in classes]  # precision = share, recall = 1
    return {"accuracy": accuracy, "macro_f1": sum(f1) / len(f1), "note": "labels of one class only: no classifier"}


def next_rows(arm: str, pool: Path, labelled: Path | None, model: Path | None, k: int, seed: int, strategy: str):
    """Pool row numbers (1-based) of the next k texts to label."""
    if arm == "random":
        taken = set()
        if labelled is not None:
            taken = {int(r["pool_row"]) for r in read_rows(labelled)}
        free = [i for i in range(1, len(read_rows(pool)) + 1) if i not in taken]
        order = np.random.default_rng(seed * 1000 + len(taken)).permutation(free)
        return [int(i) for i in order[:k]]
    options = SuggestOptions(k=k, labelled=str(labelled) if labelled else None, seed=seed, progress=False)
    if model is not None:
        options.model, options.strategy = str(model), strategy
    return [int(r) for r in suggest(pool, options).table["row"]]


def run_arm(arm: str, dataset: str, seed: int, sizes: list[int], args, results: Path, done: set) -> None:
    root = Path(args.output_root) / dataset / f"seed{seed}"
    pool = root / "pool.csv"
    test = root / "test.csv"
    pool_rows = read_rows(pool)
    labelled_file, model = None, None
    labelled: list[dict[str, str]] = []
    for size in sizes:
        folder = root / arm / str(size)
        rows_file = folder / "labelled.csv"
        if rows_file.exists():
            labelled = read_rows(rows_file)
        else:
            chosen = next_rows(arm, pool, labelled_file, model, size - len(labelled), seed, args.strategy)
            labelled = labelled + [{**pool_rows[r - 1], "pool_row": str(r)} for r in chosen]
            write_rows(rows_file, labelled, ["text", "label", "pool_row"])
        labelled_file, model = rows_file, folder / "model"
        key = (dataset, seed, arm, size)
        if key in done:
            continue
        print(f"=== {dataset} seed {seed} {arm} {size} labels", flush=True)
        classes = len({r["label"] for r in labelled})
        if classes < 2:  # e.g. 16 random draws with 10% positives: no classifier can be trained yet
            figures = single_class_figures(labelled[0]["label"], test)
            model = None  # the next round starts cold again (suggest: typiclust beside the labels so far)
        else:
            figures = train(rows_file, test, model, seed)
        line = {"dataset": dataset, "seed": seed, "arm": arm, "size": size, "classes_seen": classes, **figures}
        with open(results, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


def summary(results: list[dict]) -> list[list[str]]:
    cells: dict[tuple, list[dict]] = {}
    for r in results:
        cells.setdefault((r["dataset"], r["size"], r["arm"]), []).append(r)
    table = []
    for (dataset, size, arm), runs in sorted(cells.items()):
        accuracy = [r["accuracy"] for r in runs]
        f1 = [r["macro_f1"] for r in runs]
        table.append(
            [
                dataset,
                str(size),
                arm,
                f"{np.mean(accuracy):.3f} +- {np.std(accuracy):.3f}",
                f"{np.mean(f1):.3f} +- {np.std(f1):.3f}",
                str(len(runs)),
            ]
        )
    return table


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in results})
    figure, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        for arm in ("random", "suggest"):
            runs = [r for r in results if r["dataset"] == dataset and r["arm"] == arm]
            sizes = sorted({r["size"] for r in runs})
            means = [np.mean([r["accuracy"] for r in runs if r["size"] == s]) for s in sizes]
            spread = [np.std([r["accuracy"] for r in runs if r["size"] == s]) for s in sizes]
            axis.errorbar(sizes, means, yerr=spread, marker="o", capsize=3, label=arm)
        axis.set_xscale("log", base=2)
        axis.set_title(dataset)
        axis.set_xlabel("labels")
        axis.set_ylabel("test accuracy")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-root", required=True)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--datasets", default="ag_news,sst2_imbalanced,sst2")
    parser.add_argument("--sizes", default=",".join(str(16 * i) for i in range(1, 17)), help="Labels after each round.")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--arms", default="random,suggest")
    parser.add_argument("--pool-size", type=int, default=3000)
    parser.add_argument("--max-test", type=int, default=2000)
    parser.add_argument("--strategy", default="cluster-margin", help="suggest's strategy once a model exists.")
    args = parser.parse_args()

    root = Path(args.output_root)
    results_file = root / "results.jsonl"
    results = [json.loads(line) for line in results_file.read_text().splitlines()] if results_file.exists() else []
    done = {(r["dataset"], r["seed"], r["arm"], r["size"]) for r in results}
    sizes = [int(s) for s in args.sizes.split(",")]
    for dataset in args.datasets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            folder = root / dataset / f"seed{seed}"
            if not (folder / "pool.csv").exists():
                write_rows(folder / "pool.csv", make_pool(dataset, Path(args.data_root), args.pool_size, seed))
                test_file(dataset, Path(args.data_root), folder, args.max_test)
            for arm in args.arms.split(","):
                run_arm(arm, dataset, seed, sizes, args, results_file, done)
    results = [json.loads(line) for line in results_file.read_text().splitlines()]
    headers = ["dataset", "labels", "arm", "test accuracy", "test macro-F1", "seeds"]
    print(markdown_table(headers, summary(results)))
    plot(results, root / "active_learning.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
