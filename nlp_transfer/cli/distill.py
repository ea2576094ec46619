"""`nlp-transfer distill`: teach a trained classifier to a student that serves cheaper."""

from __future__ import annotations

import argparse

from nlp_transfer.cli.common import _command_parser


def _distill_parser() -> argparse.ArgumentParser:
    parser = _command_parser(
        "distill",
        description="Distil a trained classifier (the teacher) into a student that costs less per text: "
        "'layers:K' keeps K of the teacher's layers (every other one, as DistilBERT) and trains them to match the "
        "teacher's outputs; 'static' (pip install 'nlp-transfer[distill]') turns the teacher's encoder into one "
        "vector per token with Model2Vec and trains those vectors and a small head the same way: no transformer at "
        "prediction time, tens to hundreds of times faster on a CPU. The teacher labels the transfer texts: its "
        "own training rows by default, plus unlabelled texts of the same kind with --text-file, which is the usual "
        "way to a better student (thousands help; see the README's 'Serving cheaper: distillation'). The student "
        "folder loads, predicts, evaluates and pushes like any trained folder; distill_report.json and the printed "
        "table put teacher and student side by side: metric, agreement, texts/s at batch 1 and 32, size.",
        epilog="Example: nlp-transfer distill --teacher runs/demo --student layers:3 --text-file unlabelled.txt "
        "--output-dir runs/demo-small",
    )
    parser.add_argument("--teacher", required=True, help="Output folder of 'nlp-transfer train' (LoRA is merged).")
    parser.add_argument("--student", required=True, help="'layers:K' (e.g. layers:3) or 'static'.")
    parser.add_argument("--output-dir", required=True, help="Folder to write; complete or absent, never half-written.")
    _add_text_options(parser)
    _add_training_options(parser)
    static = parser.add_argument_group("static student")
    static.add_argument("--pca-dims", type=int, default=256, help="Dimensions of the token vectors (default 256).")
    static.add_argument("--head-hidden-size", type=int, default=512, help="Hidden width of the head; 0: linear.")
    parser.add_argument("--overwrite-output-dir", action="store_true", help="Replace a folder distill wrote before.")
    parser.add_argument("--quiet", action="store_true", help="No progress bars.")
    return parser


def _add_text_options(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("transfer and evaluation texts")
    data.add_argument(
        "--text-file",
        help="Unlabelled texts for the teacher to label: .txt (one per line) or a "
        "CSV/TSV/JSON(L)/Parquet file's text column. In-domain texts make the student better.",
    )
    data.add_argument("--train-file", help="Labelled rows (default: the teacher's training file, when still there).")
    data.add_argument(
        "--validation-file",
        help="Labelled file both models are scored and timed on (default: the teacher's validation file).",
    )
    data.add_argument("--test-file", help="A second labelled file to score both on (default: the teacher's test file).")
    data.add_argument("--text-column", help="Text column of the files (default: 'text' or 'sentence').")
    data.add_argument("--text-pair-column", help="Second text column, for sentence-pair teachers (layers:K only).")
    data.add_argument("--label-column", help="Label column of the labelled files (default: 'label' or 'labels').")
    data.add_argument("--encoding", default="utf-8", help="Text encoding of the files (default utf-8).")


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    loss = parser.add_argument_group("loss and training")
    loss.add_argument(
        "--temperature",
        type=float,
        default=2.0,
        help="Softmax/sigmoid temperature of the teacher "
        "term (default 2: softer targets carry how the teacher ranks the other labels).",
    )
    loss.add_argument(
        "--alpha",
        type=float,
        default=0.5,
        help="The teacher term's weight on labelled rows; the true "
        "labels get 1 - alpha (default 0.5). Unlabelled rows learn from the teacher alone. 0: labels only.",
    )
    loss.add_argument(
        "--epochs", type=float, help="Epochs over the transfer texts (default: 3 for layers:K, 5 static)."
    )
    loss.add_argument("--learning-rate", type=float, help="Default: 5e-5 for layers:K, 1e-3 for static.")
    loss.add_argument("--batch-size", type=int, default=32, help="Texts per training step and per prediction batch.")
    loss.add_argument("--seed", type=int, default=42, help="Seed of the student's head and the batch order.")
    loss.add_argument("--bf16", action="store_true", help="Train in bfloat16 on a GPU that supports it.")
    loss.add_argument(
        "--student-init",
        default="teacher",
        choices=["teacher", "base"],
        help="Build the student from "
        "the teacher (default) or from its pretrained checkpoint; 'base' with --alpha 0 is the student "
        "without a teacher, which measures what the teacher adds.",
    )


def _distill(argv: list[str]) -> int:
    args = _distill_parser().parse_args(argv)
    from nlp_transfer.distill.report import summary_table
    from nlp_transfer.distill.run import DistillOptions, distill

    report = distill(DistillOptions(**vars(args)))
    print(f"Distilled {report.teacher} into {args.output_dir} ({report.student}):")
    print(summary_table(report))
    print(f"{report.speedup_batch_32:.1f}x the teacher's texts/s at batch 32; every figure in distill_report.json")
    return 0
