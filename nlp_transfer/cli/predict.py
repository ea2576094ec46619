"""`nlp-transfer predict`: labels and scores for texts, one JSON object per text."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nlp_transfer.cli.common import _add_input_options, _check_shares, _command_parser, _write_whole
from nlp_transfer.errors import UserInputError


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
    from nlp_transfer.data.reading import read_texts
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
