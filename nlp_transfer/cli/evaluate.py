"""`nlp-transfer evaluate`: score a trained folder on a labelled file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nlp_transfer.cli.common import _add_input_options, _check_shares, _command_parser, _write_whole
from nlp_transfer.errors import UserInputError
from nlp_transfer.tables import metrics_table

if TYPE_CHECKING:
    from nlp_transfer.inference.folder_evaluation import FolderEvaluation


def _evaluate_parser() -> argparse.ArgumentParser:
    parser = _command_parser(
        "evaluate",
        description="Score a trained classifier folder (plain model or LoRA adapter) on any labelled file with "
        "the task's metric suite: a table on stdout, and with --output the whole report as JSON (per-class "
        "figures, confusion matrix, calibration bins, bootstrap intervals). The folder's saved decision "
        "thresholds are used.",
        epilog="Example: nlp-transfer evaluate --model runs/demo --file nlp_transfer/demo_data/validation.csv "
        "--bootstrap 1000 --output results.json",
    )
    _add_input_options(parser, "Labelled CSV, TSV, JSON, JSONL or Parquet file.")
    parser.add_argument("--label-column", help="Label column (default: 'label' or 'labels').")
    parser.add_argument("--metrics", help="Comma-separated metrics to report (default: all the task's metrics).")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="Allow --metrics names the package does not ship: evaluate.load runs their Python code "
        "(./NAME/NAME.py or the Hub's). Off unless you trust that code.",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="Resample the examples N times (e.g. 1000) for a percentile confidence interval of the primary metric.",
    )
    parser.add_argument(
        "--bootstrap-all", action="store_true", help="Intervals for every metric, not just the primary."
    )
    parser.add_argument("--confidence", type=float, default=0.95, help="Confidence level of the intervals.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the bootstrap resampling.")
    parser.add_argument(
        "--coverage",
        type=float,
        metavar="C",
        help="Also check the folder's conformal prediction sets at coverage C (e.g. 0.9): the share of texts whose "
        "set holds the true label (interval holds the value), which should be at least C, and the mean set size.",
    )
    parser.add_argument("--output", help="Write the whole report here as JSON.")
    parser.add_argument("--plots-dir", help="Also write confusion_matrix.png and calibration.png into this folder.")
    return parser


def _evaluate(argv: list[str]) -> int:
    args = _evaluate_parser().parse_args(argv)
    _check_shares(args.coverage)
    from nlp_transfer.config.checks import comma_separated
    from nlp_transfer.inference.folder_evaluation import evaluate_folder

    result = evaluate_folder(
        args.model,
        args.file,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        metrics=comma_separated(args.metrics) or None,
        bootstrap=args.bootstrap,
        bootstrap_all=args.bootstrap_all,
        confidence=args.confidence,
        seed=args.seed,
        trust_remote_code=args.trust_remote_code,
        encoding=args.encoding,
        batch_size=args.batch_size,
        coverage=args.coverage,
    )
    report = result.to_dict()
    print(f"{result.report.num_examples} examples from {args.file}; primary metric {result.primary_metric}")
    print(metrics_table({"value": report}, result.primary_metric, report["confidence_intervals"]))
    if result.abstention is not None:
        print(_abstention_table(result.abstention))
    if result.conformal is not None:
        print(_conformal_line(result.conformal))
    if args.plots_dir and result.task != "regression":
        _write_plots(result, Path(args.plots_dir), Path(args.file).name)
    if args.output:
        _write_whole(Path(args.output), json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"Wrote the report to {args.output}", file=sys.stderr)
    return 0


def _abstention_table(abstention: dict) -> str:
    """Accuracy when only the most confident texts are answered, and the --min-confidence that answers them."""
    rows = ["", "answered  accuracy  predict --min-confidence"]
    for share, accuracy in abstention["accuracy_at"].items():
        rows.append(f"{float(share):>7.0%}  {accuracy:>8.4f}  {abstention['confidence_at'][share]:.4f}")
    rows.append(f"area under the risk-coverage curve (mean error, lower is better): {abstention['aurc']:.4f}")
    return "\n".join(rows)


def _conformal_line(conformal: dict) -> str:
    """The empirical coverage of the conformal sets (intervals), against the level asked for."""
    size = (
        f"mean interval width {conformal['mean_interval_width']}"
        if "mean_interval_width" in conformal
        else f"mean set size {conformal['mean_set_size']:.3f} ({conformal['empty_sets']:.1%} empty)"
    )
    used = "" if float(conformal["level"]) == conformal["coverage_target"] else f" (level {conformal['level']})"
    return (
        f"\nCoverage {conformal['coverage_target']}{used}: {conformal['coverage']:.4f} of texts had the true answer "
        f"in their set; {size}"
    )


def _write_plots(result: FolderEvaluation, folder: Path, title: str) -> None:
    """confusion_matrix.png and calibration.png of an evaluation, into --plots-dir."""
    from nlp_transfer.evaluation.figures import plot_report

    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"--plots-dir {folder} is a file; give a folder for the two PNG files.")
    folder.mkdir(parents=True, exist_ok=True)
    plot_report(result.report, result.labels, folder, title)
    print(f"Plots in {folder}", file=sys.stderr)
