"""`nlp-transfer COMMAND [options]`: the only module that parses command-line arguments."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from nlp_transfer import __version__
from nlp_transfer.errors import UserInputError
from nlp_transfer.outputs import write_text_whole

logger = logging.getLogger("nlp_transfer")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth reading (not None, not an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _train(argv: list[str]) -> int:
    from nlp_transfer.config import RunConfig
    from nlp_transfer.training import fine_tune

    config = RunConfig.from_args(argv)
    result = fine_tune(config)
    if not result.is_main_process:
        return 0
    metrics = result.metrics
    splits = {"validation": metrics["eval"], **({"test": metrics["test"]} if "test" in metrics else {})}
    print(f"Primary metric: {metrics['primary_metric']} ({metrics.get('primary_metric_reason', '')})")
    print(metrics_table(splits, metrics["primary_metric"]))
    print(f"Saved to {result.output_dir} (metrics in {result.metrics_path})")
    if result.push is not None:
        print(f"Pushed to {result.push.repo_id}: {result.push.url}")
    return 0


def metrics_table(splits: dict[str, dict], primary: str, intervals: dict[str, dict] | None = None) -> str:
    """A plain-text table: one row per metric (the primary first), one column per split."""
    names = [primary] + [
        name
        for name, value in next(iter(splits.values())).items()
        if name != primary and isinstance(value, float) and not name.endswith(("runtime", "per_second"))
    ]
    width = max(len(name) for name in names) + 2
    header = f"{'metric':<{width}}" + "".join(f"{split:>12}" for split in splits)
    if intervals:
        levels = {interval["confidence"] for interval in intervals.values()}
        header += f"   {levels.pop():.0%} interval" if len(levels) == 1 else "   interval"
    lines = [header, "-" * len(header)]
    for name in names:
        cells = "".join(
            f"{splits[split][name]:>12.4f}" if isinstance(splits[split].get(name), float) else f"{'n/a':>12}"
            for split in splits
        )
        row = f"{name + (' *' if name == primary else ''):<{width}}{cells}"
        if intervals and name in intervals:
            row += f"   [{intervals[name]['lower']:.4f}, {intervals[name]['upper']:.4f}]"
        lines.append(row)
    undefined = {name: reason for values in splits.values() for name, reason in values.get("undefined", {}).items()}
    lines.extend(f"{name}: undefined ({reason})" for name, reason in undefined.items())
    return "\n".join(lines)


def _evaluate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nlp-transfer evaluate",
        formatter_class=_HelpFormatter,
        epilog="Example: nlp-transfer evaluate --model runs/demo --file nlp_transfer/demo_data/validation.csv "
        "--bootstrap 1000 --output results.json",
        description="Score a trained classifier folder (plain model or LoRA adapter) on any labelled file with "
        "the task's metric suite: a table on stdout, and with --output the whole report as JSON (per-class "
        "figures, confusion matrix, calibration bins, bootstrap intervals). The folder's saved decision "
        "thresholds are used.",
    )
    parser.add_argument(
        "--model", required=True, help="Output folder of 'nlp-transfer train', or the Hub id of a pushed one."
    )
    parser.add_argument("--file", required=True, help="Labelled CSV, TSV, JSON, JSONL or Parquet file.")
    parser.add_argument("--text-column", help="Text column (default: 'text' or 'sentence', or a sentence pair).")
    parser.add_argument("--text-pair-column", help="Second text column, for sentence-pair models.")
    parser.add_argument("--label-column", help="Label column (default: 'label' or 'labels').")
    parser.add_argument("--metrics", help="Comma-separated metrics to report (default: all the task's metrics).")
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
    parser.add_argument("--batch-size", type=int, default=32, help="Texts per forward pass.")
    parser.add_argument("--output", help="Write the whole report here as JSON.")
    parser.add_argument("--plots-dir", help="Also write confusion_matrix.png and calibration.png into this folder.")
    args = parser.parse_args(argv)
    from nlp_transfer.evaluation import evaluate_folder, plot_report

    names = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    result = evaluate_folder(
        args.model,
        args.file,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        metrics=names,
        bootstrap=args.bootstrap,
        bootstrap_all=args.bootstrap_all,
        confidence=args.confidence,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    record = result.to_dict()
    print(f"{result.report.num_examples} examples from {args.file}; primary metric {result.primary_metric}")
    print(metrics_table({"value": record}, result.primary_metric, record["confidence_intervals"]))
    if args.plots_dir and result.task != "regression":
        if Path(args.plots_dir).exists() and not Path(args.plots_dir).is_dir():
            raise UserInputError(f"--plots-dir {args.plots_dir} is a file; give a folder for the two PNG files.")
        folder = Path(args.plots_dir)
        folder.mkdir(parents=True, exist_ok=True)
        plot_report(result.report, result.labels, folder, Path(args.file).name)
        print(f"Plots in {folder}", file=sys.stderr)
    if args.output:
        _write_whole(Path(args.output), json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        print(f"Wrote the report to {args.output}", file=sys.stderr)
    return 0


def _write_whole(output: Path, text: str) -> None:
    """Write through a hidden temporary file and rename: the file is complete or absent."""
    if output.is_dir():
        raise UserInputError(f"--output {output} is a folder; give a file name, e.g. {output / 'results.json'}.")
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(output, text)


def _predict(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nlp-transfer predict",
        description="Predict labels and scores with a trained classifier folder (plain model or LoRA adapter). "
        "One JSON object per text, on stdout or in --output (JSON Lines).",
    )
    parser.add_argument("--model", required=True, help="Output folder of 'nlp-transfer train'.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="A text to classify (repeatable).")
    source.add_argument("--file", help="CSV, TSV, JSON, JSONL or Parquet file of texts to classify.")
    parser.add_argument("--text-column", help="Text column of --file (default: 'text' or 'sentence').")
    parser.add_argument("--text-pair-column", help="Second text column of --file, for sentence-pair models.")
    parser.add_argument("--output", help="Write the predictions here as JSON Lines instead of printing them.")
    scores = parser.add_mutually_exclusive_group()
    scores.add_argument("--top-k", type=int, help="Single-label: the K most likely labels with their scores.")
    scores.add_argument("--all-scores", action="store_true", help="Every class's score.")
    parser.add_argument("--batch-size", type=int, default=32, help="Texts per forward pass.")
    args = parser.parse_args(argv)
    from nlp_transfer.data import read_texts
    from nlp_transfer.predict import load_classifier

    if args.text:
        texts, pairs = args.text, None
    else:
        texts, pairs = read_texts(args.file, args.text_column, args.text_pair_column)
    if args.top_k is not None and args.top_k < 1:
        raise UserInputError(f"--top-k must be at least 1, not {args.top_k}.")
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, not {args.batch_size}.")
    predictions = load_classifier(args.model).predict(texts, pairs, batch_size=args.batch_size)
    records = [
        _prediction_record(text, pairs[i] if pairs else None, prediction, args.top_k, args.all_scores)
        for i, (text, prediction) in enumerate(zip(texts, predictions))
    ]
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if args.output:
        _write_whole(Path(args.output), lines)
        print(f"Wrote {len(records)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return 0


def _prediction_record(
    text: str, pair: str | None, prediction: dict, top_k: int | None, all_scores: bool
) -> dict[str, object]:
    record: dict[str, object] = {"text": text}
    if pair is not None:
        record["text_pair"] = pair
    if "labels" in prediction:  # multi-label: the labels over their thresholds, and every label's score
        return {**record, **prediction}
    record.update(label=prediction["label"], score=prediction["score"])
    if "scores" in prediction and top_k is not None:
        # The decided label first: with a tuned binary threshold it can be the less probable one.
        ranked = sorted(prediction["scores"].items(), key=lambda item: (item[0] != prediction["label"], -item[1]))
        ranked = ranked[:top_k]
        record["top_k"] = [{"label": label, "score": score} for label, score in ranked]
    elif "scores" in prediction and all_scores:
        record["scores"] = prediction["scores"]
    return record


def _push(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nlp-transfer push",
        formatter_class=_HelpFormatter,
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
        "--dry-run", action="store_true", help="List the files that would be uploaded, with sizes; upload nothing."
    )
    args = parser.parse_args(argv)
    from nlp_transfer.push import format_plan, push_folder

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
        print(format_plan(result.files))
        return 0
    print(f"Pushed {len(result.files)} files to {result.repo_id}: {result.pr_url or result.url}")
    return 0


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "train": (_train, "fine-tune a checkpoint on labelled texts (default: bundled MiniLM on demo data)"),
    "evaluate": (_evaluate, "score a trained folder on a labelled file: metric table, JSON, bootstrap intervals"),
    "predict": (_predict, "predict labels and scores for texts with a trained folder"),
    "push": (_push, "upload a trained folder to the Hugging Face Hub (model, card, metrics; no checkpoints)"),
}


def _top_level_parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  {name:<10} {summary}" for name, (_, summary) in COMMANDS.items())
    return argparse.ArgumentParser(
        prog="nlp-transfer",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Transfer learning for text classification on BERT-family encoders.",
        epilog=f"commands:\n{commands}\n\n"
        "Run 'nlp-transfer COMMAND --help' for a command's options, e.g. 'nlp-transfer train --help'.\n"
        "Quick start: nlp-transfer train --output-dir runs/demo",
    )


def _configure_logging() -> None:
    import warnings

    import datasets
    import transformers

    # torch warns on every DataLoader that pin_memory is useless without a GPU; it is noise on a CPU run.
    warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator is found.*")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logger.setLevel(logging.INFO)
    transformers.logging.set_verbosity_warning()
    datasets.logging.set_verbosity_warning()


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
    _configure_logging()
    try:
        return handler(argv[1:])
    except UserInputError as error:
        print(
            textwrap.fill(f"error: {error}", width=100, break_long_words=False, break_on_hyphens=False), file=sys.stderr
        )
        return error.exit_code
    except KeyboardInterrupt:
        print("Interrupted; no output folder was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
