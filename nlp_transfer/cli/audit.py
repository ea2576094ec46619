"""`nlp-transfer audit`: the training rows whose label is likely wrong, ranked, for a person to check."""

from __future__ import annotations

import argparse

from nlp_transfer.cli.common import _command_parser

AUDIT_EPILOG = """Check the listed rows; delete from the file the rows whose label is right after all, then train
without the rest:

  nlp-transfer audit --train-file train.csv --output label_issues.csv
  nlp-transfer train --train-file train.csv --drop-label-issues label_issues.csv --output-dir runs/clean

--method finetune trains the package's own run on each fold instead of a probe (K times one training; better
probabilities where the frozen encoder separates the classes poorly). Training options go after '--':

  nlp-transfer audit --train-file train.csv --output issues.csv --method finetune -- --strategy lora

Needs cleanlab (an optional extra): pip install 'nlp-transfer[labels]'."""


def _audit_parser() -> argparse.ArgumentParser:
    parser = _command_parser(
        "audit",
        description="Find training rows whose label is likely wrong: each row is scored by a model that never saw it "
        "(K folds: a logistic-regression probe on the frozen encoder's vectors by default), then cleanlab's confident "
        "learning flags the rows whose given label the model believes least, beyond what the estimated noise explains. "
        "Writes them ranked, with the given and the suggested label.",
        epilog=AUDIT_EPILOG,
    )
    parser.add_argument("--train-file", required=True, help="Labelled CSV, TSV, JSON, JSON Lines or Parquet file.")
    parser.add_argument("--output", required=True, help="Where to write the suspects: .csv, .tsv or .jsonl.")
    parser.add_argument("--method", default="probe", choices=["probe", "finetune"], help="How rows are scored.")
    parser.add_argument("--folds", type=int, default=5, help="K: each row is scored by a model of the other K-1 folds.")
    parser.add_argument(
        "--filter-by",
        default="low_self_confidence",
        choices=["low_self_confidence", "low_normalized_margin", "prune_by_noise_rate", "both", "confident_learning"],
        help="cleanlab's rule for which rows are issues. The default flags as many rows as cleanlab estimates are "
        "mislabelled, those whose given label the model believes least; prune_by_noise_rate flags more (higher "
        "recall, lower precision).",
    )
    parser.add_argument("--model", help="Checkpoint whose vectors the probe reads (default: the bundled MiniLM).")
    parser.add_argument("--text-column", help="Text column (default: 'text' or 'sentence', or a sentence pair).")
    parser.add_argument("--text-pair-column", help="Second text column, for sentence pairs.")
    parser.add_argument("--label-column", help="Label column (default: 'label' or 'labels').")
    parser.add_argument("--class-names", help="Comma-separated names for integer labels 0..N-1.")
    parser.add_argument("--encoding", default="utf-8", help="Text encoding of --train-file (default utf-8).")
    parser.add_argument(
        "--drop-invalid-rows",
        action="store_true",
        help="Leave out rows with an empty text or label instead of stopping.",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="Texts per forward pass (probe).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the folds (and of each fold's training).")
    parser.add_argument(
        "--work-dir", help="--method finetune: keep each fold's data and model here (default: removed)."
    )
    parser.add_argument("--quiet", action="store_true", help="No progress bars.")
    return parser


def _audit(argv: list[str]) -> int:
    own, train_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    args = _audit_parser().parse_args(own)
    from nlp_transfer.config.data import DataArguments
    from nlp_transfer.labels.audit import AuditOptions, audit, write_audit
    from nlp_transfer.labels.output import check_output

    data = DataArguments(
        train_file=args.train_file,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        class_names=args.class_names,
        encoding=args.encoding,
        drop_invalid_rows=args.drop_invalid_rows,
    )
    options = AuditOptions(
        method=args.method,
        folds=args.folds,
        filter_by=args.filter_by,
        encoder=args.model,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.quiet,
        train_args=train_args,
        work_dir=args.work_dir,
    )
    options.check()
    check_output(args.output, [args.train_file])
    result = audit(data, options)
    path = write_audit(result, args.output, [args.train_file])
    print(f"{result.summary()}; written to {path}")
    return 0
