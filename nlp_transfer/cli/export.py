"""`nlp-transfer export`: export a trained folder to ONNX (and int8), verified against PyTorch."""

from __future__ import annotations

import argparse
from typing import Any

from nlp_transfer.cli.common import _command_parser


def _export_parser() -> argparse.ArgumentParser:
    parser = _command_parser(
        "export",
        description="Export a trained folder (plain model or LoRA adapter, merged first) for deployment on CPUs: an "
        "ONNX graph with dynamic batch and sequence axes, optionally int8-quantised, with the tokenizer, config.json "
        "(labels, the package's settings) and a card section on running it with onnxruntime. The export is "
        "verified before anything is written: the exported forms score the validation texts beside the PyTorch "
        "model, and the export fails when fewer decisions agree than --min-agreement. export_report.json keeps "
        "the agreement, the largest logit difference, the primary metric of each form and their latency at "
        "batch 1 and 32. Needs the onnx extra: pip install 'nlp-transfer[onnx]'.",
        epilog="Example: nlp-transfer export --model runs/demo --quantize int8 --output-dir runs/demo-onnx "
        "--validation-file nlp_transfer/demo_data/validation.csv",
    )
    parser.add_argument("--model", required=True, help="Output folder of 'nlp-transfer train' (plain or LoRA).")
    parser.add_argument("--output-dir", required=True, help="Folder to write; complete or absent, never half-written.")
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="Export format (default onnx).")
    add_verification_arguments(parser)
    parser.add_argument("--overwrite-output-dir", action="store_true", help="Replace a non-empty --output-dir.")
    return parser


def add_verification_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The export's own options: int8, and the labelled texts the graph is verified on (export, push --with-onnx)."""
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        help="Also write an int8 graph (dynamic quantisation of the weights) and deploy it (load_classifier runs it).",
    )
    parser.add_argument(
        "--validation-file",
        help="Labelled file the export is verified on (default: the validation file named in the folder's "
        "metrics.json, when it still exists).",
    )
    parser.add_argument("--text-column", help="Text column of --validation-file (default: 'text' or 'sentence').")
    parser.add_argument("--text-pair-column", help="Second text column, for sentence-pair models.")
    parser.add_argument("--label-column", help="Label column of --validation-file (default: 'label' or 'labels').")
    parser.add_argument("--encoding", default="utf-8", help="Text encoding of --validation-file (default utf-8).")
    parser.add_argument(
        "--min-agreement",
        type=float,
        help="Share of validation texts whose decision must equal PyTorch's (default 0.995 for fp32, 0.98 for int8).",
    )
    parser.add_argument("--max-rows", type=int, default=1000, help="Validation texts to verify on (default 1000).")
    parser.add_argument("--batch-size", type=int, default=32, help="Texts per forward pass in the verification.")
    parser.add_argument("--no-latency", action="store_true", help="Skip timing PyTorch and the exported forms.")


VERIFICATION_DESTS = (
    "quantize",
    "validation_file",
    "text_column",
    "text_pair_column",
    "label_column",
    "encoding",
    "min_agreement",
    "max_rows",
    "batch_size",
    "no_latency",
)
"""What `add_verification_arguments` adds, by argparse dest."""


def verification_options(args: argparse.Namespace) -> dict[str, Any]:
    """`add_verification_arguments`' values as ExportOptions fields."""
    options = {name: getattr(args, name) for name in VERIFICATION_DESTS if name != "no_latency"}
    return {**options, "latency": not args.no_latency}


def _export(argv: list[str]) -> int:
    args = _export_parser().parse_args(argv)
    from nlp_transfer.inference.export import ExportOptions, export_model
    from nlp_transfer.inference.export_check import summary

    options = ExportOptions(
        model=args.model,
        output_dir=args.output_dir,
        format=args.format,
        overwrite_output_dir=args.overwrite_output_dir,
        **verification_options(args),
    )
    print(summary(export_model(options), args.output_dir))
    return 0
