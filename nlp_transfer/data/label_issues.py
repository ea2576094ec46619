"""`train --drop-label-issues FILE`: training rows that `nlp-transfer audit` found likely mislabelled, left out.

The file names rows by their 1-based number in the training file (header not counted), as every message of the
package does. A listed row whose text no longer matches the training file's row means the file changed since the
audit: the run stops instead of dropping the wrong rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import Dataset

from nlp_transfer.data.checks import row_list
from nlp_transfer.data.columns import ROW_COLUMN, column_values
from nlp_transfer.errors import UserInputError

logger = logging.getLogger(__name__)

ROW_FIELD = "row"


def listed_rows(path: str | Path) -> tuple[list[int], dict[int, str]]:
    """The row numbers a label-issues file lists, and the text it gives for each (where it has a text column)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"--drop-label-issues {path}: no such file. Give the CSV that 'nlp-transfer audit' wrote.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".json"):
            table = pd.read_json(path, lines=suffix == ".jsonl", dtype=False).astype(str)
        else:
            table = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise UserInputError(
            f"--drop-label-issues {path} is not a readable CSV, TSV or JSON Lines file: {error}"
        ) from None
    if ROW_FIELD not in table.columns:
        raise UserInputError(
            f"--drop-label-issues {path} has no {ROW_FIELD!r} column (its columns: {', '.join(table.columns)}). "
            "Give the CSV that 'nlp-transfer audit' wrote, or a CSV whose 'row' column lists training-file rows."
        )
    numbers = pd.to_numeric(table[ROW_FIELD], errors="coerce")
    bad = [i + 2 for i, value in enumerate(numbers) if not np.isfinite(value) or value != int(value) or value < 1]
    if bad:
        raise UserInputError(
            f"--drop-label-issues {path}: the 'row' column must hold row numbers (1, 2, ...); lines {row_list(bad)} "
            "do not."
        )
    rows = [int(value) for value in numbers]
    texts = dict(zip(rows, table["text"])) if "text" in table.columns else {}
    return rows, texts


def drop_listed_rows(train: Dataset, path: str, text_column: str, source: str) -> tuple[Dataset, int]:
    """`train` without the rows `path` lists; refused where a listed row is absent or holds another text."""
    rows, texts = listed_rows(path)
    present = column_values(train, ROW_COLUMN)
    position = {row: i for i, row in enumerate(present)}
    missing = sorted({row for row in rows if row not in position})
    if missing:
        raise UserInputError(
            f"--drop-label-issues {path} lists rows {row_list(missing)}, which {source} does not have (it has "
            f"{len(present)} valid rows). Was the audit run on another file? Run 'nlp-transfer audit' again."
        )
    values = column_values(train, text_column)
    changed = [row for row in rows if row in texts and str(values[position[row]]) != texts[row]]
    if changed:
        raise UserInputError(
            f"--drop-label-issues {path}: rows {row_list(changed)} of {source} hold other texts than the audit saw: "
            "the training file changed since. Run 'nlp-transfer audit' again on the current file."
        )
    drop = {position[row] for row in rows}
    kept = train.select([i for i in range(len(train)) if i not in drop])
    if len(kept) == 0:
        raise UserInputError(f"--drop-label-issues {path} lists every row of {source}: nothing is left to train on.")
    logger.warning("Dropped %d training rows that %s lists as likely mislabelled.", len(drop), path)
    return kept, len(drop)
