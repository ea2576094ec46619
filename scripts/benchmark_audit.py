"""Finding wrong labels, measured: `nlp-transfer audit` on AG News with labels flipped at random (seeded), and
what training without the flagged rows recovers.

    python scripts/benchmark_audit.py --output-root runs/audit --rows 2000 --noise 0.1 --methods probe
    python scripts/benchmark_audit.py --output-root runs/audit --methods probe --train     # + the three trainings
    python scripts/benchmark_audit.py --output-root runs/audit_sst2 --top-suspects 30      # SST-2's clean train set

The noisy file: --rows rows of AG News' train.csv (seed 0), a share --noise of them given another class drawn at
random (seed 0); the true labels are kept beside it. Per method: the flagged rows' precision (flipped among flagged)
and recall (flagged among flipped). With --train: the package's defaults trained on the clean rows, on the noisy
rows, and on the noisy rows without the flagged ones, each scored on one fixed subset of AG News' test set
(--max-test, seed 0). "Recovered" is (without flagged - noisy) / (clean - noisy). With --top-suspects N: audit of
SST-2's train.csv (all of it, or --sst2-rows rows drawn with seed 0) and its N most suspect rows, as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nlp_transfer.cli.app import main as nlp_transfer_cli
from nlp_transfer.config.data import DataArguments
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.labels.audit import AuditOptions, audit
from nlp_transfer.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def noisy_file(data_root: Path, folder: Path, rows: int, noise: float) -> tuple[Path, Path, set[int]]:
    """(clean file, noisy file, 1-based row numbers whose label was flipped)."""
    rng = np.random.default_rng(0)
    table = pd.read_csv(data_root / "ag_news" / "train.csv")
    table = table.iloc[rng.choice(len(table), rows, replace=False)].reset_index(drop=True)
    classes = sorted(table["label"].unique())
    flipped = rng.choice(rows, int(round(noise * rows)), replace=False)
    noisy = table.copy()
    for i in flipped:
        noisy.loc[i, "label"] = rng.choice([c for c in classes if c != table.loc[i, "label"]])
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "clean.csv", index=False)
    noisy.to_csv(folder / "noisy.csv", index=False)
    return folder / "clean.csv", folder / "noisy.csv", {int(i) + 1 for i in flipped}


def run_audit(train_file: Path, method: str, output: Path, seed: int) -> tuple[pd.DataFrame, float | None]:
    """The audit's table (written to `output`), and its seconds; an `output` already there is read back (None)."""
    if output.exists():
        return pd.read_csv(output), None
    started = time.perf_counter()
    result = audit(DataArguments(train_file=str(train_file)), AuditOptions(method=method, seed=seed, progress=False))
    result.table.to_csv(output, index=False)
    return result.table, time.perf_counter() - started


def train(train_file: Path, test: Path, folder: Path, extra: list[str]) -> float:
    argv = ["train", "--train-file", str(train_file), "--test-file", str(test), "--output-dir", str(folder)]
    argv += ["--overwrite-output-dir", "true", "--disable-tqdm", "true", *extra]
    if not (folder / "metrics.json").exists() and nlp_transfer_cli(argv) != 0:
        raise RuntimeError(f"nlp-transfer train failed for {folder}")
    return float(RunRecord.load(folder).test["accuracy"])


def fixed_test(data_root: Path, folder: Path, limit: int) -> Path:
    table = pd.read_csv(data_root / "ag_news" / "test.csv")
    if limit < len(table):
        table = table.iloc[sorted(np.random.default_rng(0).choice(len(table), limit, replace=False))]
    table.to_csv(folder / "test.csv", index=False)
    return folder / "test.csv"


def noisy_benchmark(args: argparse.Namespace, root: Path) -> None:
    clean, noisy, flipped = noisy_file(Path(args.data_root), root, args.rows, args.noise)
    lines = []
    for method in args.methods.split(","):
        table, seconds = run_audit(noisy, method, root / f"issues_{method}.csv", 0)
        flagged = set(int(r) for r in table["row"])
        hits = len(flagged & flipped)
        line = {
            "method": method,
            "flagged": len(flagged),
            "flipped": len(flipped),
            "precision": round(hits / max(1, len(flagged)), 3),
            "recall": round(hits / len(flipped), 3),
            "seconds": round(seconds) if seconds is not None else "earlier run",
        }
        if args.train:
            test = fixed_test(Path(args.data_root), root, args.max_test)
            accuracy = {
                "clean": train(clean, test, root / "runs" / "clean", []),
                "noisy": train(noisy, test, root / "runs" / "noisy", []),
                "without_flagged": train(
                    noisy,
                    test,
                    root / "runs" / f"without_{method}",
                    ["--drop-label-issues", str(root / f"issues_{method}.csv")],
                ),
            }
            cost = accuracy["clean"] - accuracy["noisy"]
            line |= {f"test_accuracy_{k}": round(v, 4) for k, v in accuracy.items()}
            line["recovered"] = round((accuracy["without_flagged"] - accuracy["noisy"]) / cost, 3) if cost > 0 else None
        lines.append(line)
        print(json.dumps(line), flush=True)
    (root / "results.json").write_text(json.dumps(lines, indent=1) + "\n")
    print(markdown_table(list(lines[0]), [[str(v) for v in line.values()] for line in lines]))


def top_suspects(args: argparse.Namespace, root: Path) -> None:
    table = pd.read_csv(Path(args.data_root) / "sst2" / "train.csv")
    table = table.iloc[np.random.default_rng(0).choice(len(table), min(args.sst2_rows, len(table)), replace=False)]
    source_row = dict(enumerate(table.index + 1, start=1))  # the audited file's row -> SST-2 train.csv's row
    root.mkdir(parents=True, exist_ok=True)
    table.to_csv(root / "sst2_train.csv", index=False)
    result, seconds = run_audit(root / "sst2_train.csv", args.methods.split(",")[0], root / "issues_sst2.csv", 0)
    print(f"{len(result)} of {len(table)} rows flagged" + (f" in {seconds:.0f} s" if seconds else ""))
    shown = result.head(args.top_suspects)
    rows = [
        [str(r.rank), str(source_row[r.row]), str(r.given_label), f"{r.given_label_probability:.3f}", r.text]
        for r in shown.itertuples()
    ]
    print(markdown_table(["rank", "train.csv row", "given", "p(given)", "text"], rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-root", required=True)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--methods", default="probe", help="Comma-separated audit methods (probe, finetune).")
    parser.add_argument("--train", action="store_true", help="Also train clean / noisy / without flagged rows.")
    parser.add_argument("--max-test", type=int, default=2000)
    parser.add_argument("--top-suspects", type=int, help="Audit SST-2's train set and list its N most suspect rows.")
    parser.add_argument(
        "--sst2-rows", type=int, default=100_000, help="Rows of SST-2 train.csv to audit (default: all)."
    )
    args = parser.parse_args()
    root = Path(args.output_root)
    if args.top_suspects:
        top_suspects(args, root)
    else:
        noisy_benchmark(args, root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
