"""`nlp-transfer benchmark`: time each strategy's training and prediction against a plain Trainer."""

from __future__ import annotations

import argparse
from pathlib import Path

from nlp_transfer.cli.common import _command_parser
from nlp_transfer.cli.parser_cache import check_arguments
from nlp_transfer.errors import UserInputError

BENCHMARK_EPILOG = """\
Example: 2,000 SST-2 sentences validated on its GLUE dev set, 2 epochs (about 20 minutes on 2 CPU cores):

  nlp-transfer benchmark --output-dir runs/benchmark \\
      --train-file ../shared/data/sst2/train.csv --validation-file ../shared/data/sst2/test.csv

Add --levers to also time full on the other side of each speed lever (batch size, length-grouped batches,
frozen word embeddings, torch.compile) and see what each saves and whether it costs accuracy.
The speed of a model too large to download, from its config alone: add --architecture bert-base.
Writes benchmark.json (every figure, every run's record) and benchmark.md (the table) to the output folder.
"""


def _benchmark_parser() -> argparse.ArgumentParser:
    from nlp_transfer.experiments.benchmark import ARCHITECTURES, DEFAULT_STRATEGIES

    parser = _command_parser(
        "benchmark",
        description="Time each strategy's training and prediction on your model and data, side by side with a "
        "plain Trainer script as transformers' text-classification example runs it, and with transformers.pipeline, "
        "in one run: "
        "samples/s, real tokens/s, padding, FLOP/s against the machine's measured peak, memory, accuracy.",
        epilog=BENCHMARK_EPILOG,
    )
    parser.add_argument("--output-dir", required=True, help="Folder for benchmark.json, benchmark.md and the runs.")
    parser.add_argument("--model", help="Checkpoint (default: the bundled MiniLM).")
    parser.add_argument("--train-file", help="Labelled training file (default: the bundled demo data).")
    parser.add_argument("--validation-file", help="Labelled validation file (default: carved from training).")
    parser.add_argument("--text-column", help="Text column (default: text, sentence, ...).")
    parser.add_argument("--label-column", help="Label column (default: label).")
    parser.add_argument(
        "--max-train-samples", type=int, default=2000, help="Training rows drawn once for every run (default 2000)."
    )
    parser.add_argument("--num-train-epochs", type=float, default=2.0, help="Epochs of every run (default 2).")
    parser.add_argument(
        "--strategies",
        default=",".join(DEFAULT_STRATEGIES),
        help="Comma-separated strategies to time (default full,freeze,lora; freeze trains its top 2 layers).",
    )
    parser.add_argument("--no-peer", action="store_true", help="Skip the plain Trainer script.")
    parser.add_argument(
        "--architecture", choices=sorted(ARCHITECTURES), help="Time a randomly initialised model of this size."
    )
    parser.add_argument("--predict-texts", type=int, default=256, help="Validation texts predict is timed on.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the draw and of every run.")
    parser.add_argument("--torch-compile", action="store_true", help="Train every strategy with torch.compile.")
    parser.add_argument(
        "--levers",
        action="store_true",
        help="Also time full on the other side of each speed lever (batch size, length-grouped batches, frozen "
        "word embeddings, torch.compile): speed and accuracy of both sides, in the same run.",
    )
    parser.add_argument("--no-progress", action="store_true", help="No progress bar over the runs.")
    return parser


def _benchmark(argv: list[str]) -> int:
    check_arguments("benchmark", argv, _benchmark_parser)
    from nlp_transfer.config.strategy import STRATEGY_OPTIONS
    from nlp_transfer.experiments.benchmark import BenchmarkSettings, run_benchmark
    from nlp_transfer.experiments.benchmark_table import table

    args = _benchmark_parser().parse_args(argv)
    strategies = tuple(name.strip() for name in args.strategies.split(",") if name.strip())
    unknown = sorted(set(strategies) - set(STRATEGY_OPTIONS))
    if unknown or not strategies:
        raise UserInputError(
            f"--strategies {args.strategies!r}: give strategy names from {', '.join(STRATEGY_OPTIONS)}, "
            "separated by commas."
        )
    settings = BenchmarkSettings(
        output_dir=Path(args.output_dir),
        model=args.model,
        train_file=args.train_file,
        validation_file=args.validation_file,
        text_column=args.text_column,
        label_column=args.label_column,
        max_train_samples=args.max_train_samples,
        num_train_epochs=args.num_train_epochs,
        strategies=strategies,
        peer=not args.no_peer,
        architecture=args.architecture,
        predict_texts=args.predict_texts,
        seed=args.seed,
        train_options={"torch_compile": True} if args.torch_compile else {},
        levers=args.levers,
    )
    results = run_benchmark(settings, progress=not args.no_progress)
    print(table(results))
    return 0
