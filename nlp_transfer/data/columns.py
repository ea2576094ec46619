"""The columns every data module reads: the row-number column, a column read at once, and the text and label
columns (found by their default names or named by the options), checked in every split."""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from nlp_transfer.config.data import DataArguments
from nlp_transfer.errors import UserInputError

DEFAULT_TEXT_COLUMNS_TEXT = "'text' or 'sentence' (or 'sentence1' + 'sentence2' as a pair)"
"""The text columns found without --text-column (`_default_text_columns`), as error messages name them."""
ROW_COLUMN = "__row__"
"""1-based data-row number in the source file (header not counted), kept for error messages."""


def column_values(dataset: Dataset, name: str) -> list[Any]:
    """All values of one column as a list, read at once.

    datasets' `dataset[name]` is a lazy Column; iterating it decodes row by row (1.5 s for SST-2's 60k rows, and
    the checks read several columns per split), while slicing it reads the Arrow column in one go (20 ms).
    """
    return list(dataset[name][:])


def _default_text_columns(columns: list[str], pair: str | None) -> tuple[str | None, str | None]:
    """'text' or 'sentence', else the pair 'sentence1' + 'sentence2' (GLUE's names); None when none is there."""
    for name in ("text", "sentence"):
        if name in columns:
            return name, pair
    if "sentence1" in columns and "sentence2" in columns:
        return "sentence1", pair or "sentence2"
    return None, pair


def no_text_column(source: object, columns: list[str], pairs: bool = True) -> UserInputError:
    """The refusal when no text column is named and none has a default name: it names the file's columns."""
    naming = "--text-column (and --text-pair-column for sentence pairs)" if pairs else "--text-column"
    return UserInputError(
        f"No text column found in {source}: looked for {DEFAULT_TEXT_COLUMNS_TEXT}; its columns are "
        f"{', '.join(columns)}. Name it with {naming}."
    )


def find_text_columns(
    source: object,
    columns: list[str],
    text: str | None,
    pair: str | None = None,
    pairs: bool = True,
    also: tuple[tuple[str, str], ...] = (),
) -> tuple[str, str | None]:
    """(text, pair): --text-column (and --text-pair-column), or the columns training finds by name.

    Every column named, found, or in `also` ((option, column) pairs the caller needs too) must be in `columns`;
    else one error naming the option, `source` (a file) and its columns. `pairs=False` for commands that read
    single texts: the message then names --text-column alone. Prediction, export, suggest and distill read a file
    as training reads its training file with this.
    """
    if text is None:
        text, pair = _default_text_columns(columns, pair)
        if text is None:
            raise no_text_column(source, columns, pairs)
    for option, column in (("--text-column", text), ("--text-pair-column", pair), *also):
        if column is not None and column not in columns:
            raise UserInputError(
                f"Column {column!r} ({option}) is not in {source}; its columns are: {', '.join(columns)}. "
                f"Name an existing column with {option}."
            )
    return text, pair


def _resolve_columns(
    splits: dict[str, Dataset], args: DataArguments, sources: dict[str, str]
) -> tuple[str, str | None, str]:
    columns = [c for c in splits["train"].column_names if c != ROW_COLUMN]
    text, pair, label = args.text_column, args.text_pair_column, args.label_column
    if text is None:
        text, pair = _default_text_columns(columns, pair)
        if text is None:
            raise no_text_column(sources["train"], columns)
    if label is None:
        label = next((c for c in ("label", "labels") if c in columns), None)
        if label is None:
            raise UserInputError(
                f"No label column found in {sources['train']}: looked for 'label' or 'labels'; its columns are "
                f"{', '.join(columns)}. Name it with --label-column."
            )
    given = {"--text-column": args.text_column, "--text-pair-column": args.text_pair_column}
    given["--label-column"] = args.label_column
    for role, split in splits.items():
        present = [c for c in split.column_names if c != ROW_COLUMN]
        for option, column in (("--text-column", text), ("--text-pair-column", pair), ("--label-column", label)):
            if column is not None and column not in present:
                if given[option] and role == "train":
                    advice = f"Name one of its columns with {option}."
                elif given[option]:
                    advice = f"Every data file needs the columns of the training file: rename it in {sources[role]}."
                else:
                    advice = (
                        f"No {option} was given: '{column}' is the column found by its default name in "
                        f"{sources['train']}, and every data file needs the same columns. Rename the column in "
                        f"{sources[role]}, or name one that every file has with {option}."
                    )
                raise UserInputError(
                    f"Column '{column}' ({option}) is not in {sources[role]}; its columns are: {', '.join(present)}. "
                    + advice
                )
    return text, pair, label
