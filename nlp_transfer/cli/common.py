"""What several commands share: the help formatter and a command's parser, the options `evaluate` and
`predict` share, the checks of --coverage and --min-confidence, whole-file writing, and logging set-up.

Imports nothing heavy at the top (see `app`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from nlp_transfer.errors import UserInputError
from nlp_transfer.outputs import write_text_whole

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


def _check_shares(coverage: float | None, min_confidence: float | None = None) -> None:
    """--coverage and --min-confidence, checked before the model loads (by the rules prediction applies)."""
    from nlp_transfer.evaluation.conformal import check_coverage, check_min_confidence

    if coverage is not None:
        check_coverage(coverage)
    if min_confidence is not None:
        check_min_confidence(min_confidence)


def _write_whole(output: Path, text: str) -> None:
    """Write through a hidden temporary file and rename: the file is complete or absent."""
    if output.is_dir():
        raise UserInputError(f"--output {output} is a folder; give a file name, e.g. {output / 'results.json'}.")
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(output, text)


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
