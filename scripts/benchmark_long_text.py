"""Long documents: every --long-text mode at two --max-length values, side by side, on one train/test pair.

    python scripts/benchmark_long_text.py --output-root runs/long_text \
        --train-file ../shared/data/imdb_reviews/train.csv --test-file ../shared/data/imdb_reviews/test.csv -- \
        --num-train-epochs 1 --per-device-train-batch-size 8 --eval-strategy no --load-best-model-at-end false

Arguments after `--` go to `nlp-transfer train` unchanged for every run. Per max length, each truncation mode
(truncate-head, truncate-tail, head-tail) trains one model, and `chunk` trains one model whose test windows are
aggregated each way (mean, max, first, attention) from one pass over its windows (`Classifier.window_logits`):
the aggregation only acts on the window logits (training reads windows one by one; with --eval-strategy no
nothing picks a checkpoint by it).

Figures per row: test accuracy and macro-F1 over documents, the share of test documents longer than the max
length, training time and training tokens/s (from metrics.json), and predict time: `load_classifier` scoring
every test document at batch 32, as a user would. A finished run (its metrics.json) is reused on a re-run.
Results go to OUTPUT_ROOT/results.json and results.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from nlp_transfer import RunConfig, fine_tune, load_classifier
from nlp_transfer.data.long_text import length_report, token_lengths
from nlp_transfer.evaluation.documents import AGGREGATIONS, aggregate_logits
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.tables import markdown_table

TRUNCATIONS = ("truncate-head", "truncate-tail", "head-tail")
PREDICT_BATCH = 32
HEADERS = [
    "max length",
    "mode",
    "test accuracy",
    "test macro-F1",
    "test docs truncated",
    "train windows",
    "train time (s)",
    "predict time (s)",
    "predict docs/s",
]


def read_test(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], np.asarray([int(row["label"]) for row in rows])


def train_once(folder: Path, options: dict, train_args: list[str]) -> RunRecord:
    """Train into `folder` unless a finished run is there; its record either way."""
    metrics = folder / "metrics.json"
    if not metrics.is_file():
        flags = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
        fine_tune(RunConfig.from_args([*flags, f"--output-dir={folder}", *train_args]))
    return RunRecord.from_dict(json.loads(metrics.read_text(encoding="utf-8")))


def scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    predicted = logits.argmax(axis=1)
    return {"accuracy": accuracy_score(labels, predicted), "macro_f1": f1_score(labels, predicted, average="macro")}


def merged(path: Path, results: list[dict]) -> list[dict]:
    """An earlier run's rows (e.g. other --modes), with the rows measured now replacing theirs."""
    fresh = {(r["max_length"], r["mode"]) for r in results}
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    rows = [r for r in earlier if (r["max_length"], r["mode"]) not in fresh] + results
    return sorted(rows, key=lambda r: (r["max_length"], _MODE_ORDER.index(r["mode"].split(" ")[0])))


_MODE_ORDER = [*TRUNCATIONS, "chunk"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-root", required=True, type=Path, help="Folder for one run folder per mode.")
    parser.add_argument("--train-file", required=True, help="Labelled CSV (text, label) to train on.")
    parser.add_argument("--test-file", required=True, type=Path, help="Labelled CSV (text, label 0/1) to score.")
    parser.add_argument("--max-lengths", type=int, nargs="+", default=[128, 512], help="Token budgets to compare.")
    parser.add_argument("--modes", nargs="+", default=[*TRUNCATIONS, "chunk"], help="--long-text modes to run.")
    parser.add_argument(
        "--stride-share",
        type=float,
        default=0.125,
        help="chunk: --chunk-stride as a share of --max-length (0.125: 16 of 128, 64 of 512).",
    )
    args, train_args = parser.parse_known_args()
    train_args = [a for a in train_args if a != "--"]
    texts, labels = read_test(args.test_file)
    results = []
    for max_length in args.max_lengths:
        for mode in args.modes:
            options = {"train_file": args.train_file, "long_text": mode, "max_length": max_length}
            if mode == "chunk":
                options["chunk_stride"] = int(max_length * args.stride_share)
            record = train_once(args.output_root / f"{mode}_{max_length}", options, train_args)
            classifier = load_classifier(args.output_root / f"{mode}_{max_length}", device="cpu")
            lengths = token_lengths(classifier.tokenizer, texts)
            truncated = length_report(lengths, max_length)["truncated_share"]
            train = record.long_text["splits"]["train"]
            common = {
                "max_length": max_length,
                "train_time_s": record.train_runtime_s,
                "train_windows": train.get("chunks", train["documents"]),
                "test_truncated_share": truncated,
                "train_tokens": record.training_cost.real_tokens if record.training_cost else None,
            }
            started = time.perf_counter()
            if mode != "chunk":
                logits = classifier.logits(texts, batch_size=PREDICT_BATCH)
                seconds = time.perf_counter() - started
                results.append({**common, "mode": mode, "predict_s": seconds, **scores(logits, labels)})
                print(json.dumps(results[-1]), flush=True)
                continue
            windows, documents = classifier.window_logits(texts, batch_size=PREDICT_BATCH)  # logits() less its mean
            seconds = time.perf_counter() - started
            for how in AGGREGATIONS:
                ids, by_document = aggregate_logits(windows, documents, how, classifier.task)
                logits = np.zeros((len(texts), by_document.shape[1]))
                logits[ids] = by_document  # ids are the texts' rows (a text without windows would keep zeros)
                row = {**common, "mode": f"chunk ({how})", "predict_s": seconds, **scores(logits, labels)}
                results.append({**row, "test_windows": len(documents)})
                print(json.dumps(results[-1]), flush=True)
    args.output_root.mkdir(parents=True, exist_ok=True)
    results = merged(args.output_root / "results.json", results)
    (args.output_root / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    rows = [
        [
            str(r["max_length"]),
            r["mode"],
            f"{r['accuracy']:.4f}",
            f"{r['macro_f1']:.4f}",
            f"{100 * r['test_truncated_share']:.1f}%",
            str(r["train_windows"]),
            f"{r['train_time_s']:.0f}",
            f"{r['predict_s']:.0f}",
            f"{len(texts) / r['predict_s']:.1f}",
        ]
        for r in results
    ]
    table = markdown_table(HEADERS, rows)
    (args.output_root / "results.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
