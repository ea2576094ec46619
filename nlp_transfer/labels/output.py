"""The tables `suggest` and `audit` write: CSV, TSV or JSON Lines by the output's suffix, complete or absent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nlp_transfer.errors import UserInputError
from nlp_transfer.outputs import write_text_whole

OUTPUT_FORMATS = (".csv", ".tsv", ".jsonl")


def write_table(table: pd.DataFrame, output: str | Path, inputs: list[str | None]) -> Path:
    """Write `table` through a hidden file and a rename; refused over a folder or one of the `inputs`."""
    path = check_output(output, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(path, table_text(table, path.suffix.lower()))
    return path


def check_output(output: str | Path, inputs: list[str | None]) -> Path:
    """The output path, refused (before any work) when its suffix is unknown, it is a folder or one of `inputs`."""
    path = Path(output).expanduser()
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise UserInputError(f"--output {path}: give a file ending in one of {', '.join(OUTPUT_FORMATS)}.")
    if path.is_dir():
        raise UserInputError(f"--output {path} is a folder; give a file name, e.g. {path / 'labels.csv'}.")
    for source in inputs:
        if source and path.resolve() == Path(source).expanduser().resolve():
            raise UserInputError(f"--output {path} is one of the input files ({source}); give another name.")
    return path


def table_text(table: pd.DataFrame, suffix: str) -> str:
    """A table as the text of a .csv, .tsv or .jsonl file."""
    if suffix == ".jsonl":
        return table.to_json(orient="records", lines=True, force_ascii=False)
    return table.to_csv(index=False, sep="\t" if suffix == ".tsv" else ",")
