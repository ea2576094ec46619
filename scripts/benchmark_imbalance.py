"""Imbalanced labels: plain training vs --class-weights balanced vs --tune-threshold, side by side.

    python scripts/benchmark_imbalance.py --output-root runs/imbalance \
        --imbalanced-train-from ../shared/data/sst2/train.csv --minority-label 1 --ratio 9 --train-size 1000 -- \
        --validation-file ../shared/data/sst2/test.csv --class-names negative,positive --num-train-epochs 3

Arguments after `--` go to `nlp-transfer train` unchanged for every variant. With --imbalanced-train-from,
the training file is a deterministic subsample of that CSV with RATIO majority rows per minority row (the
validation data stays as given, so the figures are measured on the real label balance). Figures per
variant: the primary metric (validation, and test when given: thresholds are tuned on validation, so test
is the unbiased figure), the rarest training class's recall, precision and F1, balanced accuracy, macro-F1.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.tables import markdown_table

VARIANTS = {
    "plain": [],
    "class-weights": ["--class-weights", "balanced"],
    "tune-threshold": ["--tune-threshold", "true"],
    "both": ["--class-weights", "balanced", "--tune-threshold", "true"],
}


def write_imbalanced(source: Path, target: Path, minority: str, ratio: float, size: int) -> dict[str, int]:
    """First rows of `source` with `ratio` rows of the other labels per row of `minority`, `size` in all."""
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    wanted_minority = round(size / (ratio + 1))
    minority_rows = [r for r in rows if r["label"] == minority][:wanted_minority]
    majority_rows = [r for r in rows if r["label"] != minority][: size - len(minority_rows)]
    chosen = sorted(minority_rows + majority_rows, key=rows.index)  # keep the file's own order
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(chosen)
    return {"minority": len(minority_rows), "majority": len(majority_rows)}


def split_in_two(source: Path, folder: Path) -> tuple[Path, Path]:
    """Alternate rows of `source` into validation and test files: thresholds tuned on one, judged on the other."""
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    paths = (folder / "validation.csv", folder / "test.csv")
    folder.mkdir(parents=True, exist_ok=True)
    for path, part in zip(paths, (rows[0::2], rows[1::2]), strict=True):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
    return paths


HEADERS = [
    "variant",
    "validation primary",
    "test primary",
    "minority recall",
    "minority precision",
    "minority F1",
    "balanced accuracy",
    "macro-F1",
    "thresholds",
    "train time (s)",
]


def _row(variant: str, record: RunRecord) -> list[str]:
    evaluation, test, primary = record.eval, record.test or {}, record.primary_metric
    counts = record.train_label_counts or {}
    minority = min(counts, key=counts.get) if counts else None
    per_class = evaluation.get("per_class", {}).get(minority, {}) if minority else {}
    thresholds = (record.decision_thresholds or {}).get("values")
    return [
        variant,
        f"{primary} {evaluation[primary]:.4f}",
        f"{test[primary]:.4f}" if primary in test else "-",
        f"{per_class.get('recall', float('nan')):.3f}",
        f"{per_class.get('precision', float('nan')):.3f}",
        f"{per_class.get('f1', float('nan')):.3f}",
        f"{evaluation.get('balanced_accuracy', float('nan')):.4f}",
        f"{evaluation.get('macro_f1', float('nan')):.4f}",
        json.dumps(thresholds) if thresholds else "-",
        f"{record.train_runtime_s:.0f}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-root", required=True, help="Folder for one run folder per variant.")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="Comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--imbalanced-train-from", help="CSV to subsample into an imbalanced training file.")
    parser.add_argument("--minority-label", default="1", help="Label value kept rare in the subsample.")
    parser.add_argument("--ratio", type=float, default=9.0, help="Majority rows per minority row.")
    parser.add_argument("--train-size", type=int, default=1000, help="Rows in the subsample.")
    parser.add_argument(
        "--split-evaluation-file",
        help="CSV split by alternate rows into --validation-file (tuning) and --test-file (the honest figure).",
    )
    args, train_args = parser.parse_known_args()
    train_args = [a for a in train_args if a != "--"]
    from nlp_transfer.cli.app import main as cli

    root = Path(args.output_root)
    if args.imbalanced_train_from:
        train_file = root / "data" / "train.csv"
        counts = write_imbalanced(
            Path(args.imbalanced_train_from), train_file, args.minority_label, args.ratio, args.train_size
        )
        print(f"Imbalanced training file {train_file}: {counts}", flush=True)
        train_args = ["--train-file", str(train_file), *train_args]
    if args.split_evaluation_file:
        validation, test = split_in_two(Path(args.split_evaluation_file), root / "data")
        train_args = [*train_args, "--validation-file", str(validation), "--test-file", str(test)]
    rows = []
    for variant in args.variants.split(","):
        folder = root / variant
        print(f"=== {variant}", flush=True)
        code = cli(
            ["train", "--output-dir", str(folder), "--overwrite-output-dir", "true", *VARIANTS[variant], *train_args]
        )
        if code != 0:
            print(f"{variant} failed; see its output above", file=sys.stderr)
            return code
        rows.append(_row(variant, RunRecord.load(folder)))
    print()
    print(markdown_table(HEADERS, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
