"""Train one checkpoint on one data slice with every strategy, side by side, and print a Markdown table.

    python scripts/benchmark_strategies.py --output-root runs/bench -- \
        --train-file ../shared/data/sst2/train.csv --validation-file ../shared/data/sst2/test.csv \
        --max-train-samples 2000 --num-train-epochs 2

Arguments after `--` go to `nlp-transfer train` for every strategy, except the options of a strategy
(`--train-top-layers 1`, `--lora-r 16`, ...), which go only to the strategies that read them (`train` refuses
another strategy's options). Each strategy runs in its own process so that its peak memory (resident set
size) is its own. Figures: validation primary metric,
trainable parameters, train time and samples per second from metrics.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from nlp_transfer.config.checks import option_flag
from nlp_transfer.config.strategy import STRATEGY_OPTIONS
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.tables import markdown_table

STRATEGIES = tuple(STRATEGY_OPTIONS)
STRATEGY_FLAGS = {option_flag(name) for options in STRATEGY_OPTIONS.values() for name in options}


def options_for(strategy: str, train_args: list[str]) -> list[str]:
    """`train_args` without the options of other strategies (a flag and its value, or --flag=value)."""
    own = {option_flag(name) for name in STRATEGY_OPTIONS[strategy]}
    kept: list[str] = []
    dropping_value = False
    for argument in train_args:
        if dropping_value and not argument.startswith("--"):
            dropping_value = False  # the value of a dropped flag
            continue
        flag = argument.split("=", 1)[0].replace("_", "-")
        if flag in STRATEGY_FLAGS and flag not in own:
            dropping_value = "=" not in argument
            continue
        dropping_value = False
        kept.append(argument)
    return kept


def _worker(output_dir: str, train_args: list[str]) -> int:
    """Run one training in this process and record its peak resident memory beside metrics.json."""
    from nlp_transfer.cli.app import main

    code = main(["train", "--output-dir", output_dir, *train_args])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if code == 0:
        Path(output_dir, "peak_memory.json").write_text(json.dumps({"peak_rss_mib": peak_kib / 1024}))
    return code


def _row(strategy: str, folder: Path) -> list[str]:
    record = RunRecord.load(folder)
    peak = json.loads((folder / "peak_memory.json").read_text())["peak_rss_mib"]
    return [
        strategy,
        f"{record.eval[record.primary_metric]:.4f}",
        f"{record.trainable_parameters:,}",
        f"{record.total_parameters:,}",
        str(record.strategy_settings.get("learning_rate")),
        f"{record.train_runtime_s:.1f}",
        f"{record.train_samples_per_second:.1f}",
        f"{peak:,.0f}",
    ]


def _headers(primary: str) -> list[str]:
    return [
        "strategy",
        f"validation {primary}",
        "trainable parameters",
        "total parameters",
        "learning rate",
        "train time (s)",
        "train samples/s",
        "peak RSS (MiB)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-root", required=True, help="Folder for one run folder per strategy.")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="Comma-separated strategies to run.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args, train_args = parser.parse_known_args()
    train_args = [a for a in train_args if a != "--"]
    if args.worker:
        return _worker(args.worker, train_args)

    root = Path(args.output_root)
    rows = []
    for strategy in args.strategies.split(","):
        folder = root / strategy
        command = [sys.executable, __file__, "--output-root", str(root), "--worker", str(folder)]
        command += ["--strategy", strategy, "--overwrite-output-dir", "true", *options_for(strategy, train_args)]
        print(f"=== {strategy}", flush=True)
        if subprocess.run(command).returncode != 0:
            print(f"{strategy} failed; see its output above", file=sys.stderr)
            return 1
        rows.append(_row(strategy, folder))
    primary = RunRecord.load(root / args.strategies.split(",")[0]).primary_metric
    print()
    print(markdown_table(_headers(primary), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
