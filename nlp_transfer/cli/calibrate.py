"""`nlp-transfer calibrate`: refit a folder's temperature and prediction sets on labelled texts."""

from __future__ import annotations

import argparse

from nlp_transfer.cli.common import _command_parser


def _calibrate_parser() -> argparse.ArgumentParser:
    parser = _command_parser(
        "calibrate",
        description="Refit a trained folder's scores on labelled texts like the ones it will meet, without "
        "retraining: a temperature (on top of the one training folded in) that makes its probabilities mean what "
        "they say, and the conformal quantiles behind predict --coverage. Use it when the texts you predict differ "
        "from the training data's validation rows (another source, period or length), or to give a folder trained "
        "by an older version calibrated scores and prediction sets. Writes a new folder; the original is not "
        "changed. A few hundred labelled rows are enough; check the result on other rows with "
        "'nlp-transfer evaluate --coverage 0.9'.",
        epilog="Example: nlp-transfer calibrate --model runs/demo --file nlp_transfer/demo_data/validation.csv "
        "--output-dir runs/demo-calibrated",
    )
    parser.add_argument("--model", required=True, help="Output folder of 'nlp-transfer train' (plain or LoRA).")
    parser.add_argument("--file", required=True, help="Labelled CSV, TSV, JSON, JSONL or Parquet file to fit on.")
    parser.add_argument("--output-dir", required=True, help="Folder to write; complete or absent, never half-written.")
    parser.add_argument(
        "--calibration",
        default="temperature",
        choices=["temperature", "none"],
        help="'temperature' (default) refits the scores; 'none' keeps them and refits only the conformal quantiles.",
    )
    parser.add_argument("--text-column", help="Text column of --file (default: 'text' or 'sentence').")
    parser.add_argument("--text-pair-column", help="Second text column, for sentence-pair models.")
    parser.add_argument("--label-column", help="Label column of --file (default: 'label' or 'labels').")
    parser.add_argument("--encoding", default="utf-8", help="Text encoding of --file (default utf-8).")
    parser.add_argument("--batch-size", type=int, default=32, help="Texts per forward pass.")
    parser.add_argument("--overwrite-output-dir", action="store_true", help="Replace a folder calibrate wrote before.")
    return parser


def _calibrate(argv: list[str]) -> int:
    args = _calibrate_parser().parse_args(argv)
    from nlp_transfer.training.recalibration import RecalibrationOptions, recalibrate

    report = recalibrate(
        RecalibrationOptions(
            model=args.model,
            file=args.file,
            output_dir=args.output_dir,
            calibration=args.calibration,
            text_column=args.text_column,
            text_pair_column=args.text_pair_column,
            label_column=args.label_column,
            encoding=args.encoding,
            batch_size=args.batch_size,
            overwrite_output_dir=args.overwrite_output_dir,
        )
    )
    print(f"Calibrated on {report.rows} rows of {args.file}; saved to {args.output_dir}")
    if report.temperature is not None:
        print(f"temperature {report.temperature} (on top of {report.previous_temperature or 'none before'})")
    for name in ("ece", "log_loss", "brier"):
        if name in report.before:
            print(f"{name:<9} {report.before[name]:.4f} -> {report.after[name]:.4f} (on the rows fitted on)")
    print(f"conformal quantiles from {report.conformal['rows']} rows: predict --coverage C uses them")
    return 0
