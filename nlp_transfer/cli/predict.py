"""`nlp-transfer predict`: labels and scores for texts, one JSON object per text."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nlp_transfer.cli.common import _add_input_options, _check_shares, _command_parser, _write_whole
from nlp_transfer.errors import UserInputError

CORPUS_EPILOG = """A whole corpus (--file): the file is read in chunks and each chunk's predictions are written as
soon as they exist, so memory stays flat and a progress bar shows the rate and time left. --output's extension
picks its format (.jsonl, .csv, .tsv, .parquet); without --output, JSON Lines go to stdout as they come. The output
is written under a hidden name and renamed when complete; a run that was stopped continues with the same command
plus --resume, and its output equals an uninterrupted run's, row for row. An empty text gets a row with 'skipped'
(or the file is refused before predicting with --on-empty error).

  nlp-transfer predict --model runs/demo --file tickets.csv --keep-columns id,date --output tickets.parquet
  nlp-transfer predict --model runs/demo --file tickets.csv --keep-columns id,date --output tickets.parquet --resume
"""


def _predict_parser() -> argparse.ArgumentParser:
    parser = _command_parser(
        "predict",
        description="Predict labels and scores with a trained classifier folder (plain model, LoRA adapter or an "
        "exported ONNX folder). One row per text, on stdout or in --output.",
        epilog=CORPUS_EPILOG,
    )
    _add_input_options(parser, "CSV, TSV, JSON Lines or Parquet file of texts to classify (streamed).", texts=True)
    parser.add_argument(
        "--output",
        help="Write the predictions here instead of printing them: .csv, .tsv, .parquet, else JSON Lines.",
    )
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
    _add_corpus_options(parser)
    return parser


def _add_corpus_options(parser: argparse.ArgumentParser) -> None:
    corpus = parser.add_argument_group("a whole corpus (--file)")
    corpus.add_argument(
        "--keep-columns",
        metavar="COLS",
        help="Input columns written before each prediction, in input order: names separated by commas (e.g. id,date), "
        "or 'all'.",
    )
    corpus.add_argument(
        "--on-empty",
        choices=("mark", "error"),
        default="mark",
        help="An empty text: 'mark' gives it a row with skipped='empty text'; 'error' refuses the file before any "
        "prediction, naming the rows.",
    )
    corpus.add_argument("--resume", action="store_true", help="Continue the interrupted run that wrote --output.")
    corpus.add_argument(
        "--chunk-rows",
        type=int,
        default=4096,
        help="Rows read, predicted and written at a time (the unit --resume continues from).",
    )
    corpus.add_argument("--quiet", action="store_true", help="No progress bar (it is also off when not on a terminal).")
    corpus.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="Where a PyTorch folder runs (auto: the GPU when there is one). An exported folder runs in onnxruntime.",
    )
    precision = corpus.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="bfloat16 autocast on a GPU (faster; CPU: refused).")
    precision.add_argument("--fp16", action="store_true", help="float16 autocast on a GPU (CPU: refused).")
    _add_backend_options(corpus)


def _add_backend_options(corpus: argparse._ArgumentGroup) -> None:
    corpus.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: this process reads, predicts and writes. ray: Ray Data reads the file and a pool of Ray actors "
        "predicts it (one model load each; a GPU each where there are GPUs), this process writes the same output "
        "as local (pip install 'nlp-transfer[ray]'; on a multi-node cluster --file must be on shared storage). "
        "--resume is local only (it continues a stopped Ray run too).",
    )
    corpus.add_argument(
        "--ray-address", help="With --backend ray: join this Ray cluster (e.g. auto); without it a local one starts."
    )
    corpus.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="With --backend ray: N classifier actors (default: one per GPU, else 2 or the CPU count if smaller).",
    )


def _predict(argv: list[str]) -> int:
    args = _predict_parser().parse_args(argv)
    if args.top_k is not None and args.top_k < 1:
        raise UserInputError(f"--top-k must be at least 1, not {args.top_k}.")
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, not {args.batch_size}.")
    _check_shares(args.coverage, args.min_confidence)
    _check_backend(args)
    if args.file:
        return _predict_corpus(args)
    from nlp_transfer.data.checks import refuse_empty_texts
    from nlp_transfer.inference.predict import load_classifier
    from nlp_transfer.inference.records import prediction_record

    texts = args.text
    refuse_empty_texts(texts, range(1, len(texts) + 1), "--text")  # the rule --on-empty error applies to a file
    predictions = load_classifier(args.model, _device(args.device)).predict(
        texts, None, batch_size=args.batch_size, coverage=args.coverage, min_confidence=args.min_confidence
    )
    records = [
        prediction_record(text, None, prediction, args.top_k, args.all_scores)
        for text, prediction in zip(texts, predictions, strict=True)
    ]
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if args.output:
        _write_whole(Path(args.output), lines)
        print(f"Wrote {len(records)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return 0


def _predict_corpus(args: argparse.Namespace) -> int:
    from nlp_transfer.config.checks import comma_separated
    from nlp_transfer.inference.corpus import CorpusOptions, predict_corpus

    options = CorpusOptions(
        text_column=args.text_column,
        pair_column=args.text_pair_column,
        keep_columns=comma_separated(args.keep_columns) or None,
        on_empty=args.on_empty,
        batch_size=args.batch_size,
        chunk_rows=args.chunk_rows,
        top_k=args.top_k,
        all_scores=args.all_scores,
        coverage=args.coverage,
        min_confidence=args.min_confidence,
        encoding=args.encoding,
    )
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else None
    if args.backend == "ray":
        from nlp_transfer.inference.corpus_ray import predict_corpus_ray

        result = predict_corpus_ray(
            args.model,
            args.file,
            args.output,
            options,
            not args.quiet,
            _device(args.device),
            precision,
            address=args.ray_address,
            workers=args.ray_workers,
        )
    else:
        result = predict_corpus(
            args.model, args.file, args.output, options, args.resume, not args.quiet, _device(args.device), precision
        )
    print(result.summary(), file=sys.stderr)
    return 0


def _check_backend(args: argparse.Namespace) -> None:
    """The Ray options only with --backend ray, and that backend only for a --file without --resume."""
    if args.backend != "ray":
        for option, value in (("--ray-address", args.ray_address), ("--ray-workers", args.ray_workers)):
            if value is not None:
                raise UserInputError(f"{option} goes with --backend ray; add it, or leave {option} out.")
        return
    if not args.file:
        raise UserInputError("--backend ray predicts a --file; for --text leave --backend out.")
    if args.resume:
        raise UserInputError(
            "--resume is the local backend's: run the same command without --backend ray (it continues a stopped "
            "Ray run too, whose parts are the local run's)."
        )
    if args.ray_workers is not None and args.ray_workers < 1:
        raise UserInputError(f"--ray-workers must be at least 1, not {args.ray_workers}.")


def _device(choice: str) -> str | None:
    return None if choice == "auto" else choice
