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


def _resolve_columns(
    splits: dict[str, Dataset], args: DataArguments, sources: dict[str, str]
) -> tuple[str, str | None, str]:
    columns = [c for c in splits["train"].column_names if c != ROW_COLUMN]
    text, pair, label = args.text_column, args.text_pair_column, args.label_column
    if text is None:
        text, pair = _default_text_columns(columns, pair)
        if text is None:
            raise UserInputError(
                f"No text column found in {sources['train']}: looked for {DEFAULT_TEXT_COLUMNS_TEXT}; its columns "
                f"are {', '.join(columns)}. Name it with --text-column (and --text-pair-column for sentence pairs)."
            )
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
