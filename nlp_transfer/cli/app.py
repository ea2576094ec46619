"""`nlp-transfer COMMAND [options]`: the command table and the dispatch; each command lives in a module of its
own (`cli/train.py`, `cli/evaluate.py`, ...), what several share in `cli/common.py`.

Imports nothing heavy at the top (nor do the command modules): torch, transformers and datasets load inside a
command, after its arguments parsed, so that --help and argument errors answer at once (train, adapt and
benchmark, whose parsers need those libraries, check their arguments through `parser_cache` first).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable

from nlp_transfer.cli.adapt import _adapt
from nlp_transfer.cli.audit import _audit
from nlp_transfer.cli.benchmark import _benchmark
from nlp_transfer.cli.calibrate import _calibrate
from nlp_transfer.cli.common import VERBOSE_FLAG, _configure_logging
from nlp_transfer.cli.compare import _compare
from nlp_transfer.cli.distill import _distill
from nlp_transfer.cli.evaluate import _evaluate
from nlp_transfer.cli.export import _export
from nlp_transfer.cli.predict import _predict
from nlp_transfer.cli.push import _push
from nlp_transfer.cli.suggest import _suggest
from nlp_transfer.cli.train import _train
from nlp_transfer.errors import TrainingInterrupted, UserInputError
from nlp_transfer.version import __version__

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
    "suggest": (_suggest, "choose which texts of an unlabelled pool to label next (cold start or by uncertainty)"),
    "audit": (_audit, "find training rows whose label is likely wrong (out-of-sample probabilities + cleanlab)"),
    "distill": (_distill, "teach a trained folder to a student that serves cheaper (fewer layers, or static)"),
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
