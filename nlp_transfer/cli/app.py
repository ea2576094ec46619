"""`nlp-transfer COMMAND [options]`: the only module that parses command-line arguments.

Imports nothing heavy at the top: torch, transformers and datasets load inside a command, after its arguments
parsed, so that --help and argument errors answer at once (train, adapt and benchmark, whose parsers need those
libraries, check their arguments through `parser_cache` first).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nlp_transfer.cli.parser_cache import check_arguments
from nlp_transfer.errors import TrainingInterrupted, UserInputError
from nlp_transfer.outputs import write_text_whole
from nlp_transfer.tables import metrics_table
from nlp_transfer.version import __version__

if TYPE_CHECKING:
    from nlp_transfer.inference.folder_evaluation import FolderEvaluation

logger = logging.getLogger("nlp_transfer")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth reading (not None, not an off switch); a description or
    epilog with line breaks of its own (an example file) keeps them."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _train_parser() -> argparse.ArgumentParser:
    from nlp_transfer.config.arguments import build_parser

    return build_parser(prog="nlp-transfer train")


def _train(argv: list[str]) -> int:
    check_arguments("train", argv, _train_parser)
    from nlp_transfer.config.arguments import RunConfig
    from nlp_transfer.training.fine_tune import fine_tune

    result = fine_tune(RunConfig.from_args(argv))
    if not result.is_main_process:
        return 0
    record = result.record
    print(f"Primary metric: {record.primary_metric} ({record.primary_metric_reason or ''})")
    print(metrics_table(record.evaluated_splits, record.primary_metric))
    print(f"Saved to {result.output_dir} (metrics in {result.metrics_path})")
    if result.push is not None:
        print(f"Pushed to {result.push.repo_id}: {result.push.url}")
    return 0


def _command_parser(command: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """The parser of one `nlp-transfer COMMAND` (train builds its own from the config dataclasses)."""
    return argparse.ArgumentParser(
        prog=f"nlp-transfer {command}", formatter_class=_HelpFormatter, description=description, epilog=epilog
    )


def _add_input_options(parser: argparse.ArgumentParser, file_help: str, texts: bool = False) -> None:
    """The options `evaluate` and `predict` share: the trained classifier, the file of texts, its columns, batch size.

    --file is required; with `texts` (predict), --text (repeatable) may be given instead.
    """
    parser.add_argument(
        "--model", required=True, help="Output folder of 'nlp-transfer train', or the Hub id of a pushed one."
    )
    if texts:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--text", action="append", help="A text to classify (repeatable).")
        source.add_argument("--file", help=file_help)
    else:
        parser.add_argument("--file", required=True, help=file_help)
    parser.add_argument(
        "--text-column", help="Text column of --file (default: 'text' or 'sentence', or a sentence pair)."
    )
    parser.add_argument("--text-pair-column", help="Second text column of --file, for sentence-pair models.")
    parser.add_argument(
        "--encoding", default="utf-8", help="Text encoding of --file (default utf-8; e.g. latin-1 or cp1252)."
    )
    parser.add_argument("--batch-size", type=int, default=32, help="Texts per forward pass.")


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
    from nlp_transfer.config.arguments import comma_separated
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


def _write_whole(output: Path, text: str) -> None:
    """Write through a hidden temporary file and rename: the file is complete or absent."""
    if output.is_dir():
        raise UserInputError(f"--output {output} is a folder; give a file name, e.g. {output / 'results.json'}.")
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(output, text)


def _predict_parser() -> argparse.ArgumentParser:
    parser = _command_parser(
        "predict",
        description="Predict labels and scores with a trained classifier folder (plain model or LoRA adapter). "
        "One JSON object per text, on stdout or in --output (JSON Lines).",
    )
    _add_input_options(parser, "CSV, TSV, JSON, JSONL or Parquet file of texts to classify.", texts=True)
    parser.add_argument("--output", help="Write the predictions here as JSON Lines instead of printing them.")
    scores = parser.add_mutually_exclusive_group()
    scores.add_argument("--top-k", type=int, help="Single-label: the K most likely labels with their scores.")
    scores.add_argument("--all-scores", action="store_true", help="Every class's score.")
    parser.add_argument(
        "--coverage",
        type=float,
        metavar="C",
        help="Add to each text the set of labels (label_set, set_size) that holds the true one for at least a share "
        "C of texts (e.g. 0.9), from conformal quantiles fitted at training time; multi-label: holds all true "
        "labels; regression: an interval [low, high]. An empty set means no label is likely enough.",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        metavar="P",
        help="Abstain (label null, abstained true) where the decision's probability is below P instead of guessing. "
        "'nlp-transfer evaluate' shows the accuracy and the share of texts answered at each P.",
    )
    return parser


def _predict(argv: list[str]) -> int:
    args = _predict_parser().parse_args(argv)
    from nlp_transfer.data.dataset import read_texts
    from nlp_transfer.inference.predict import load_classifier

    if args.text:
        from nlp_transfer.data.checks import refuse_empty_texts

        texts, pairs = args.text, None
        refuse_empty_texts(texts, range(1, len(texts) + 1), "--text")  # the rule an empty text in --file meets
    else:
        texts, pairs = read_texts(args.file, args.text_column, args.text_pair_column, args.encoding)
    if args.top_k is not None and args.top_k < 1:
        raise UserInputError(f"--top-k must be at least 1, not {args.top_k}.")
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, not {args.batch_size}.")
    _check_shares(args.coverage, args.min_confidence)
    predictions = load_classifier(args.model).predict(
        texts, pairs, batch_size=args.batch_size, coverage=args.coverage, min_confidence=args.min_confidence
    )
    records = [
        _prediction_record(text, pairs[i] if pairs else None, prediction, args.top_k, args.all_scores)
        for i, (text, prediction) in enumerate(zip(texts, predictions, strict=True))
    ]
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if args.output:
        _write_whole(Path(args.output), lines)
        print(f"Wrote {len(records)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return 0


def _check_shares(coverage: float | None, min_confidence: float | None = None) -> None:
    """--coverage and --min-confidence, checked before the model loads (by the rules prediction applies)."""
    from nlp_transfer.evaluation.conformal import check_coverage, check_min_confidence

    if coverage is not None:
        check_coverage(coverage)
    if min_confidence is not None:
        check_min_confidence(min_confidence)


def _prediction_record(
    text: str, pair: str | None, prediction: dict, top_k: int | None, all_scores: bool
) -> dict[str, object]:
    record: dict[str, object] = {"text": text}
    if pair is not None:
        record["text_pair"] = pair
    if "labels" in prediction:  # multi-label: the labels over their thresholds, and every label's score
        return {**record, **prediction}
    extras = {key: value for key, value in prediction.items() if key not in ("label", "score", "scores")}
    record.update(label=prediction["label"], score=prediction["score"], **extras)
    if "scores" in prediction and top_k is not None:
        # The decided label first: with a tuned binary threshold it can be the less probable one.
        ranked = sorted(prediction["scores"].items(), key=lambda item: (item[0] != prediction["label"], -item[1]))
        ranked = ranked[:top_k]
        record["top_k"] = [{"label": label, "score": score} for label, score in ranked]
    elif "scores" in prediction and all_scores:
        record["scores"] = prediction["scores"]
    return record


def _push(argv: list[str]) -> int:
    parser = _command_parser(
        "push",
        description="Upload a trained output folder to the Hugging Face Hub in one commit: the model (or LoRA "
        "adapter), tokenizer, model card, metrics and plots; never checkpoints, optimizer state, logs or "
        "tokens. The token comes from HF_TOKEN or a saved 'hf auth login'; the package never writes it.",
        epilog="Example: nlp-transfer push --model runs/demo --repo-id my-user/support-classifier --dry-run",
    )
    parser.add_argument("--model", required=True, help="Output folder of 'nlp-transfer train'.")
    parser.add_argument("--repo-id", required=True, help="Hub model repository: NAME or NAMESPACE/NAME.")
    parser.add_argument("--private", action="store_true", help="Create the repository as private (if new).")
    parser.add_argument("--revision", help="Branch to push to (created from main when missing).")
    parser.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing.")
    parser.add_argument("--commit-message", help="Commit title (default: strategy and primary metric).")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="List the files that would be uploaded, with sizes, and each file left local with the reason; upload "
        "nothing.",
    )
    args = parser.parse_args(argv)
    from nlp_transfer.hub.push import format_plan, push_folder

    result = push_folder(
        args.model,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        create_pr=args.create_pr,
        commit_message=args.commit_message,
        dry_run=args.dry_run,
    )
    if result.dry_run:
        print(f"Dry run: would upload to {result.repo_id} (branch {result.revision}):")
        print(format_plan(result.files, result.refused))
        return 0
    print(f"Pushed {len(result.files)} files to {result.repo_id}: {result.pr_url or result.url}")
    return 0


GRID_EXAMPLE = """\
Example grid file (YAML; every option of 'nlp-transfer train' works, a list of values is one more axis):

  train_file: ../shared/data/sst2/train.csv
  validation_file: ../shared/data/sst2/test.csv
  strategies: [full, freeze, {strategy: lora, lora_r: 16, name: lora-r16}]
  train_sizes: [16, 64, 256, 2000]      # drawn stratified by label; 'all' for the whole file
  seeds: [0, 1, 2]
  output_dir: runs/grid

Without a validation file, one validation split is carved from the training data with split_seed (default
42) before any size is drawn, so every cell is scored on the same rows. Re-running the same command skips
the cells already in OUTPUT_DIR/runs.jsonl. Writes runs.csv (one row per run), summary.csv, summary.json and
summary.md (mean +- std over seeds); cells/CELL/metrics.json keeps each run's record (the model too with
keep_models: true).
"""


def _compare(argv: list[str]) -> int:
    parser = _command_parser(
        "compare",
        description="Train a grid of runs (strategies x training-set sizes x seeds, and any option given as a "
        "list) one after another on one fixed validation set, and tabulate what each strategy reaches at "
        "each size, with the spread over seeds.",
        epilog=GRID_EXAMPLE,
    )
    parser.add_argument("--config", required=True, help="Grid file (YAML or JSON), as in the example below.")
    parser.add_argument("--output-dir", help="The grid's folder (overrides output_dir in the file).")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar over the cells.")
    parser.add_argument(
        "--dry-run", action="store_true", help="List the cells (and which are finished) and train nothing."
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="Write the tables and plots from the cells finished so far and train nothing (read a long grid "
        "while it runs, or after a kill).",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: cells one after another in this process. ray: each cell a Ray task, several at a time "
        "(pip install 'nlp-transfer[ray]'); on a multi-node cluster the grid's folder must be shared storage.",
    )
    parser.add_argument(
        "--ray-address", help="Join this Ray cluster (e.g. auto, or ray://host:10001); without it a local one starts."
    )
    parser.add_argument(
        "--cpus-per-cell", type=float, default=1, help="CPUs Ray reserves for each cell (a GPU too when there is one)."
    )
    args = parser.parse_args(argv)
    from nlp_transfer.experiments.grid import finished_cells, load_grid, report_grid, run_grid

    grid = load_grid(args.config, {"output_dir": args.output_dir} if args.output_dir else None)
    if args.dry_run:
        finished = finished_cells(grid)
        for cell in grid.cells:
            print(f"{'finished' if cell.key in finished else 'to train':<9} {cell.key}")
        print(f"{len(grid.cells)} cells, {len(finished)} finished, into {grid.folder}")
        return 0
    if args.report_only:
        rows = report_grid(grid)
        print((grid.folder / "summary.md").read_text(encoding="utf-8"))
        print(f"Report of {len(rows)} of {len(grid.cells)} cells written to {grid.folder}", file=sys.stderr)
        return 0
    print(f"Grid: {len(grid.cells)} runs into {grid.folder} ({args.backend} backend)", file=sys.stderr)
    outcome = run_grid(
        grid,
        progress=not args.no_progress,
        backend=args.backend,
        ray_address=args.ray_address,
        cpus_per_cell=args.cpus_per_cell,
    )
    print((grid.folder / "summary.md").read_text(encoding="utf-8"))
    print(
        f"Trained {len(outcome.trained)} cells, {len(outcome.skipped)} finished before; tables in {grid.folder}",
        file=sys.stderr,
    )
    if outcome.failed:
        for key, message in outcome.failed.items():
            print(f"Cell {key} failed: {message}", file=sys.stderr)
        print(
            f"{len(outcome.failed)} cells failed (see {grid.folder / 'failed.jsonl'}); re-run to retry them.",
            file=sys.stderr,
        )
        return 1
    return 0


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
    from nlp_transfer.config.arguments import STRATEGY_OPTIONS
    from nlp_transfer.experiments.benchmark import BenchmarkSettings, run_benchmark, table

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


ADAPT_EPILOG = """\
Example: continue pretraining the bundled MiniLM on unlabelled clinical notes, then fine-tune the result:

  nlp-transfer adapt --text-file notes.txt --output-dir runs/minilm-clinical --num-train-epochs 3
  nlp-transfer train --model runs/minilm-clinical --train-file labelled.csv --output-dir runs/clinical

Every TrainingArguments option works (--learning-rate, --per-device-train-batch-size, --seed, ...).
The folder holds the adapted model with its masked-LM head, the tokenizer, and adapt.json with the held-out
masked-LM loss and perplexity before and after.
"""


def _adapt_parser() -> argparse.ArgumentParser:
    from transformers import HfArgumentParser

    from nlp_transfer.config.arguments import TransferTrainingArguments
    from nlp_transfer.training.adapt import ADAPT_DEFAULTS, AdaptArguments

    parser = HfArgumentParser(
        (AdaptArguments, TransferTrainingArguments),
        prog="nlp-transfer adapt",
        usage="nlp-transfer adapt --text-file FILE --output-dir DIR [--model M] [options]",
        description="Continue masked-language-model pretraining of a checkpoint on unlabelled text of your "
        "domain (domain-/task-adaptive pretraining, Gururangan et al. 2020) before fine-tuning on few labels.",
        epilog=ADAPT_EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.set_defaults(**ADAPT_DEFAULTS)
    return parser


def _adapt(argv: list[str]) -> int:
    check_arguments("adapt", argv, _adapt_parser)
    from nlp_transfer.training.adapt import adapt, summary

    try:
        adapt_args, training = _adapt_parser().parse_args_into_dataclasses(argv)
    except ValueError as error:
        raise UserInputError(f"Invalid adapt options: {error}") from None
    print(summary(adapt(adapt_args, training)))
    return 0


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
    parser.add_argument("--overwrite-output-dir", action="store_true", help="Replace a non-empty --output-dir.")
    return parser


def _export(argv: list[str]) -> int:
    args = _export_parser().parse_args(argv)
    from nlp_transfer.inference.export import ExportOptions, export_model, summary

    options = ExportOptions(
        model=args.model,
        output_dir=args.output_dir,
        format=args.format,
        quantize=args.quantize,
        validation_file=args.validation_file,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        encoding=args.encoding,
        min_agreement=args.min_agreement,
        max_rows=args.max_rows,
        batch_size=args.batch_size,
        latency=not args.no_latency,
        overwrite_output_dir=args.overwrite_output_dir,
    )
    print(summary(export_model(options), args.output_dir))
    return 0


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


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "train": (_train, "fine-tune a checkpoint on labelled texts (default: bundled MiniLM on demo data)"),
    "evaluate": (_evaluate, "score a trained folder on a labelled file: metric table, JSON, bootstrap intervals"),
    "predict": (_predict, "predict labels and scores for texts with a trained folder"),
    "push": (_push, "upload a trained folder to the Hugging Face Hub (model, card, metrics; no checkpoints)"),
    "adapt": (_adapt, "continue masked-LM pretraining on unlabelled domain text (a checkpoint for train --model)"),
    "compare": (_compare, "train a grid of strategies x training-set sizes x seeds and tabulate mean +- std"),
    "benchmark": (_benchmark, "time each strategy's training and prediction against a plain Trainer script"),
    "export": (_export, "export a trained folder to ONNX (and int8), verified against PyTorch, with its latency"),
    "calibrate": (_calibrate, "refit a folder's temperature and prediction sets on labelled texts like yours"),
}


def _top_level_parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  {name:<10} {summary}" for name, (_, summary) in COMMANDS.items())
    return argparse.ArgumentParser(
        prog="nlp-transfer",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Transfer learning for text classification on BERT-family encoders.",
        epilog=f"commands:\n{commands}\n\n"
        "Run 'nlp-transfer COMMAND --help' for a command's options, e.g. 'nlp-transfer train --help'.\n"
        f"Every command also takes {VERBOSE_FLAG}: debug logging, with the libraries' own reports.\n"
        "Quick start: nlp-transfer train --output-dir runs/demo",
    )


VERBOSE_FLAG = "--verbose"


def _configure_logging(verbose: bool = False) -> None:
    """The package logs at INFO (DEBUG with --verbose, which also shows the libraries' own reports, such as
    transformers' table of the weights a checkpoint lacks); transformers and datasets keep their default level
    (warnings), so nothing here imports them."""
    import warnings

    # torch warns on every DataLoader that pin_memory is useless without a GPU; it is noise on a CPU run.
    warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator is found.*")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nlp-transfer` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _top_level_parser()
    parser.add_argument("--version", action="version", version=f"nlp-transfer {__version__}")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="one of: " + ", ".join(COMMANDS))
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    namespace = parser.parse_args(argv[:1])
    handler, _ = COMMANDS[namespace.command]
    options = [arg for arg in argv[1:] if arg != VERBOSE_FLAG]  # every command takes it, in any position
    _configure_logging(verbose=len(options) < len(argv) - 1)
    try:
        return handler(options)
    except UserInputError as error:
        print(
            textwrap.fill(f"error: {error}", width=100, break_long_words=False, break_on_hyphens=False), file=sys.stderr
        )
        return error.exit_code
    except TrainingInterrupted as stopped:
        print(textwrap.fill(str(stopped), width=100, break_long_words=False, break_on_hyphens=False), file=sys.stderr)
        return stopped.exit_code
    except KeyboardInterrupt:
        print("Interrupted; no output folder was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
