"""`nlp-transfer suggest`: the texts of an unlabelled pool to label next, best first."""

from __future__ import annotations

import argparse

from nlp_transfer.cli.common import _command_parser

SUGGEST_EPILOG = """The loop: label what suggest lists, train on every label so far, suggest again with the new model.

  nlp-transfer suggest --pool tickets.csv --k 32 --output to_label.csv                 # cold start: no model yet
  # ... label the 32 texts of to_label.csv into labelled.csv (text,label) ...
  nlp-transfer train --train-file labelled.csv --output-dir runs/round1
  nlp-transfer suggest --pool tickets.csv --labelled labelled.csv --model runs/round1 --k 32 --output to_label.csv

Strategies: typiclust (default without --model) clusters the pool's vectors and takes the most typical text of each
cluster the labels cover least, so the first labels cover the classes; cluster-margin (default with --model) takes
the texts the classifier is least sure of (smallest gap between its two most likely classes), one per cluster of
them, so that one confusing kind of text does not fill the batch; margin: the least sure texts alone; random: the
baseline. Texts already labelled, repeats (same text up to case and spaces) and near-duplicates (--duplicate-cosine)
are never suggested. The output lists rank, the pool's row number (1 = first row after the header), strategy, score
(typicality, or the margin: smaller is less sure), reason, with --model the predicted label and its probability,
then every column of the pool (ids included)."""


def _suggest_parser() -> argparse.ArgumentParser:
    parser = _command_parser(
        "suggest",
        description="Choose which texts of an unlabelled pool to label next: diverse, typical texts for a cold start, "
        "the texts the current classifier is least sure of afterwards. Writes the K best, ranked, with why.",
        epilog=SUGGEST_EPILOG,
    )
    parser.add_argument("--pool", required=True, help="Unlabelled texts: CSV, TSV, JSON Lines or Parquet.")
    parser.add_argument("--k", type=int, required=True, help="How many texts to suggest.")
    parser.add_argument(
        "--output", required=True, help="Where to write them: .csv, .tsv or .jsonl (complete or absent)."
    )
    parser.add_argument(
        "--model", help="The current classifier (a folder of 'nlp-transfer train'); none: a cold start."
    )
    parser.add_argument("--labelled", help="Texts labelled so far (any of the pool's formats): never suggested again.")
    parser.add_argument(
        "--strategy",
        default="auto",
        choices=["auto", "typiclust", "cluster-margin", "margin", "random"],
        help="auto: cluster-margin with --model, typiclust without (see below).",
    )
    parser.add_argument(
        "--encoder",
        help="Cold start: the checkpoint whose vectors are clustered (default: the bundled MiniLM). With --model, "
        "the model's own encoder is used.",
    )
    parser.add_argument("--text-column", help="Text column of --pool (default: 'text' or 'sentence').")
    parser.add_argument("--labelled-text-column", help="Text column of --labelled (default: --pool's text column).")
    parser.add_argument(
        "--duplicate-cosine",
        type=float,
        default=0.95,
        help="Texts whose vectors are at least this similar count as near-duplicates: one of them is enough.",
    )
    parser.add_argument("--encoding", default="utf-8", help="Text encoding of the files (default utf-8).")
    parser.add_argument("--batch-size", type=int, default=32, help="Texts per forward pass.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of k-means and of --strategy random.")
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")
    return parser


def _suggest(argv: list[str]) -> int:
    args = _suggest_parser().parse_args(argv)
    from nlp_transfer.labels.output import check_output
    from nlp_transfer.labels.suggest import SuggestOptions, suggest, write_suggestions

    options = SuggestOptions(
        k=args.k,
        strategy=args.strategy,
        model=args.model,
        encoder=args.encoder,
        labelled=args.labelled,
        text_column=args.text_column,
        labelled_text_column=args.labelled_text_column,
        encoding=args.encoding,
        batch_size=args.batch_size,
        seed=args.seed,
        duplicate_cosine=args.duplicate_cosine,
        progress=not args.quiet,
    )
    options.check()
    check_output(args.output, [args.pool, args.labelled])
    suggestions = suggest(args.pool, options)
    path = write_suggestions(suggestions, args.output, [args.pool, args.labelled])
    print(f"{suggestions.summary()}; written to {path}")
    return 0
