"""`nlp-transfer adapt`: continue masked-LM pretraining on unlabelled domain text."""

from __future__ import annotations

import argparse

from nlp_transfer.cli.common import _HelpFormatter
from nlp_transfer.cli.parser_cache import check_arguments
from nlp_transfer.errors import UserInputError

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

    from nlp_transfer.config.training import TransferTrainingArguments
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
