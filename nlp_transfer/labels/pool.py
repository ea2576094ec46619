"""The pool of unlabelled texts that `suggest` chooses from, and the texts already labelled.

Read through the corpus reader of `predict --file` (CSV, TSV, JSON Lines, Parquet; chunk by chunk), so a pool of
any size and format reads the way a corpus does. Kept in memory: the texts and their columns (for the rows the
output names) and, later, one vector per text. Rows with an empty text are counted and left out; a text that is
already labelled, or repeats an earlier row of the pool (same text after normalising case and spaces), is not
eligible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_transfer.data.checks import is_empty_text
from nlp_transfer.data.columns import find_text_columns
from nlp_transfer.errors import UserInputError
from nlp_transfer.inference.corpus_files import CorpusFile

CHUNK_ROWS = 16_384


@dataclass
class TextFile:
    """The non-empty texts of a file, with their 1-based row numbers and every column's values for those rows."""

    path: Path
    text_column: str
    texts: list[str]
    rows: list[int]
    columns: dict[str, list[Any]] = field(default_factory=dict)
    empty_rows: int = 0


def read_text_file(path: str | Path, text_column: str | None = None, encoding: str = "utf-8") -> TextFile:
    """All non-empty texts of `path` (its `text_column`, or 'text'/'sentence') with their rows and columns."""
    corpus = CorpusFile.open(path, encoding)
    texts: list[str] = []
    rows: list[int] = []
    columns: dict[str, list[Any]] = {}
    empty, seen = 0, 0
    for table in corpus.chunks(CHUNK_ROWS):
        if not columns:  # the first chunk names the columns
            text_column = _text_column(corpus.path, table.column_names, text_column)
            columns = {name: [] for name in table.column_names}
        values = table.column(text_column).to_pylist()
        keep = [i for i, value in enumerate(values) if not is_empty_text(value)]
        empty += len(values) - len(keep)
        texts += [str(values[i]) for i in keep]
        rows += [seen + i + 1 for i in keep]
        for name in columns:
            column = table.column(name).to_pylist() if name in table.column_names else [None] * len(values)
            columns[name] += [column[i] for i in keep]
        seen += len(values)
    if not columns:
        raise UserInputError(f"{corpus.path} has no rows. Give a file with texts.")
    if not texts:
        raise UserInputError(f"Every text of {corpus.path} (column {text_column!r}) is empty. Give a file with texts.")
    return TextFile(corpus.path, text_column, texts, rows, columns, empty)


def _text_column(path: Path, columns: list[str], text_column: str | None) -> str:
    """--text-column, or 'text' / 'sentence' (the first of a sentence pair); refused naming the file's columns.
    Suggest reads single texts: the message names no --text-pair-column."""
    return find_text_columns(path, columns, text_column, pairs=False)[0]


def eligible_rows(pool: TextFile, labelled: TextFile | None) -> tuple[np.ndarray, int, int]:
    """(indices of the pool texts that may be suggested, how many are labelled already, how many repeat an
    earlier pool text): a labelled text or a repeat is never suggested."""
    known = {same_text_key(text) for text in labelled.texts} if labelled is not None else set()
    first: set[str] = set()
    eligible, labelled_count, repeats = [], 0, 0
    for index, key in enumerate(map(same_text_key, pool.texts)):
        if key in known:
            labelled_count += 1
        elif key in first:
            repeats += 1
        else:
            first.add(key)
            eligible.append(index)
    return np.asarray(eligible, dtype=np.int64), labelled_count, repeats


def same_text_key(text: str) -> str:
    """What two texts share when they are the same text: lower case, runs of spaces as one, ends trimmed."""
    return " ".join(text.casefold().split())
