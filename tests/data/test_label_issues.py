"""`train --drop-label-issues FILE`: the training rows an audit file lists leave the training split (by their 1-based
file row, checked against the text the audit saw), counted in `dropped_rows`; and the refusals: a missing file, no
`row` column, values that are not row numbers, a row the training file does not have, a row whose text changed since
the audit, every row listed.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pandas as pd
import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer.cli.app import main
from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.columns import ROW_COLUMN, column_values
from nlp_transfer.data.prepare import load_data, read_and_encode
from nlp_transfer.errors import UserInputError

ROWS = sentiment_rows(6)
"""12 rows, positive and negative alternating; row n (1-based) is ROWS[n - 1]."""


@pytest.fixture()
def train(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "train.csv", ROWS)


def issues(path: Path, rows: list[int], texts: bool = True) -> Path:
    """An audit-like file listing `rows` (with the training file's text of each, unless `texts` is False)."""
    records = [{"rank": i, "row": row, "given_label": ROWS[row - 1]["label"]} for i, row in enumerate(rows, start=1)]
    if texts:
        for record in records:
            record["text"] = ROWS[record["row"] - 1]["text"]
    return write_csv(path, records, fieldnames=["rank", "row", "given_label"] + (["text"] if texts else []))


def train_rows(data) -> list[int]:
    return column_values(data.splits["train"], ROW_COLUMN)


def refused(train: Path, listed: Path) -> str:
    with pytest.raises(UserInputError) as error:
        read_and_encode(DataArguments(train_file=str(train), drop_label_issues=str(listed)))
    return str(error.value)


# ------------------------------------------------------------------------------------------------ dropping


def test_listed_rows_leave_the_training_split(train: Path, tmp_path: Path) -> None:
    listed = issues(tmp_path / "issues.csv", [2, 5, 11])
    data = read_and_encode(DataArguments(train_file=str(train), drop_label_issues=str(listed)))
    assert train_rows(data) == [1, 3, 4, 6, 7, 8, 9, 10, 12]
    assert column_values(data.splits["train"], "text") == [ROWS[n - 1]["text"] for n in train_rows(data)]
    assert data.dropped_rows == {"train (label issues)": 3}


def test_load_data_with_a_validation_file_keeps_the_rest_for_training(train: Path, tmp_path: Path) -> None:
    validation = write_csv(tmp_path / "validation.csv", sentiment_rows(2))
    listed = issues(tmp_path / "issues.csv", [1, 12])
    args = DataArguments(train_file=str(train), validation_file=str(validation), drop_label_issues=str(listed))
    data = load_data(args)
    assert train_rows(data) == list(range(2, 12))
    assert column_values(data.splits["validation"], ROW_COLUMN) == [1, 2, 3, 4]  # the validation file is untouched
    assert data.dropped_rows["train (label issues)"] == 2


def test_load_data_carves_validation_from_the_rows_left(train: Path, tmp_path: Path) -> None:
    listed = issues(tmp_path / "issues.csv", [3, 4])
    data = load_data(DataArguments(train_file=str(train), drop_label_issues=str(listed)))
    kept = train_rows(data) + column_values(data.splits["validation"], ROW_COLUMN)
    assert sorted(kept) == [1, 2, 5, 6, 7, 8, 9, 10, 11, 12]
    assert data.dropped_rows["train (label issues)"] == 2


def test_a_file_of_row_numbers_alone_is_enough(train: Path, tmp_path: Path) -> None:
    listed = write_csv(tmp_path / "rows.csv", [{"row": "7"}, {"row": "8.0"}])
    data = read_and_encode(DataArguments(train_file=str(train), drop_label_issues=str(listed)))
    assert train_rows(data) == [1, 2, 3, 4, 5, 6, 9, 10, 11, 12]


def test_a_tsv_file_and_a_row_listed_twice(train: Path, tmp_path: Path) -> None:
    listed = tmp_path / "issues.tsv"
    pd.DataFrame({"row": [4, 4, 9], "text": [ROWS[3]["text"], ROWS[3]["text"], ROWS[8]["text"]]}).to_csv(
        listed, sep="\t", index=False
    )
    data = read_and_encode(DataArguments(train_file=str(train), drop_label_issues=str(listed)))
    assert train_rows(data) == [1, 2, 3, 5, 6, 7, 8, 10, 11, 12]
    assert data.dropped_rows["train (label issues)"] == 2


def test_an_empty_list_drops_nothing(train: Path, tmp_path: Path) -> None:
    listed = tmp_path / "issues.csv"
    listed.write_text("rank,row,text\n", encoding="utf-8")
    data = read_and_encode(DataArguments(train_file=str(train), drop_label_issues=str(listed)))
    assert train_rows(data) == list(range(1, 13))
    assert data.dropped_rows.get("train (label issues)", 0) == 0


def test_rows_are_file_rows_after_invalid_rows_are_dropped(tmp_path: Path) -> None:
    rows = [{"text": "", "label": "positive"}, *ROWS]  # file row n + 1 is ROWS[n - 1]
    train = write_csv(tmp_path / "train.csv", rows)
    listed = write_csv(tmp_path / "issues.csv", [{"row": 3, "text": rows[2]["text"]}])
    args = DataArguments(train_file=str(train), drop_label_issues=str(listed), drop_invalid_rows=True)
    data = read_and_encode(args)
    assert train_rows(data) == [2, *range(4, 14)]
    assert data.dropped_rows == {"train": 1, "train (label issues)": 1}


def test_texts_with_commas_quotes_and_newlines_match(tmp_path: Path) -> None:
    rows = [
        {"text": 'said "no", then left', "label": "a"},
        {"text": "two\nlines", "label": "b"},
        {"text": "plain", "label": "a"},
        {"text": "  spaced  ", "label": "b"},
        {"text": "other", "label": "b"},
    ]
    train = write_csv(tmp_path / "train.csv", rows)
    listed = write_csv(tmp_path / "issues.csv", [{"row": n, "text": rows[n - 1]["text"]} for n in (1, 2, 4)])
    data = read_and_encode(DataArguments(train_file=str(train), drop_label_issues=str(listed)))
    assert train_rows(data) == [3, 5]


def test_an_audit_file_written_as_json_lines_is_read(train: Path, tmp_path: Path) -> None:
    from nlp_transfer.labels.output import write_table

    table = pd.DataFrame({"rank": [1, 2], "row": [2, 6], "text": [ROWS[1]["text"], ROWS[5]["text"]]})
    listed = write_table(table, tmp_path / "issues.jsonl", [])
    data = read_and_encode(DataArguments(train_file=str(train), drop_label_issues=str(listed)))
    assert train_rows(data) == [1, 3, 4, 5, 7, 8, 9, 10, 11, 12]


# ------------------------------------------------------------------------------------------------ refusals


def test_a_missing_file_is_refused(train: Path, tmp_path: Path) -> None:
    missing = tmp_path / "issues.csv"
    assert refused(train, missing) == (
        f"--drop-label-issues {missing}: no such file. Give the CSV that 'nlp-transfer audit' wrote."
    )


def test_a_file_without_a_row_column_is_refused(train: Path, tmp_path: Path) -> None:
    listed = write_csv(tmp_path / "issues.csv", [{"line": "2", "text": ROWS[1]["text"]}])
    assert refused(train, listed) == (
        f"--drop-label-issues {listed} has no 'row' column (its columns: line, text). Give the CSV that "
        "'nlp-transfer audit' wrote, or a CSV whose 'row' column lists training-file rows."
    )


def test_values_that_are_not_row_numbers_are_refused_by_line(train: Path, tmp_path: Path) -> None:
    values = ["3", "x", "2.5", "0", "", "-1", "4"]
    listed = write_csv(tmp_path / "issues.csv", [{"row": value} for value in values])
    # File lines: the header is line 1, so values[i] is on line i + 2.
    assert refused(train, listed) == (
        f"--drop-label-issues {listed}: the 'row' column must hold row numbers (1, 2, ...); lines 3, 4, 5, 6, 7 do not."
    )


def test_an_infinite_row_value_is_refused(train: Path, tmp_path: Path) -> None:
    listed = write_csv(tmp_path / "issues.csv", [{"row": "2"}, {"row": "inf"}])
    assert refused(train, listed) == (
        f"--drop-label-issues {listed}: the 'row' column must hold row numbers (1, 2, ...); lines 3 do not."
    )


def test_a_row_the_training_file_does_not_have_is_refused(train: Path, tmp_path: Path) -> None:
    listed = write_csv(tmp_path / "issues.csv", [{"row": 2}, {"row": 13}, {"row": 40}])
    assert refused(train, listed) == (
        f"--drop-label-issues {listed} lists rows 13, 40, which {train} does not have (it has 12 valid rows). Was "
        "the audit run on another file? Run 'nlp-transfer audit' again."
    )


def test_a_row_whose_text_changed_since_the_audit_is_refused(train: Path, tmp_path: Path) -> None:
    listed = write_csv(
        tmp_path / "issues.csv",
        [{"row": 2, "text": ROWS[1]["text"]}, {"row": 5, "text": ROWS[5]["text"]}, {"row": 8, "text": "other"}],
    )
    assert refused(train, listed) == (
        f"--drop-label-issues {listed}: rows 5, 8 of {train} hold other texts than the audit saw: the training file "
        "changed since. Run 'nlp-transfer audit' again on the current file."
    )


def test_listing_every_row_is_refused(train: Path, tmp_path: Path) -> None:
    listed = issues(tmp_path / "issues.csv", list(range(1, 13)))
    assert refused(train, listed) == (
        f"--drop-label-issues {listed} lists every row of {train}: nothing is left to train on."
    )


def test_train_refuses_a_bad_file_before_training(train: Path, tmp_path: Path) -> None:
    missing, out = tmp_path / "none.csv", tmp_path / "out"
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(
            ["train", "--train-file", str(train), "--drop-label-issues", str(missing), "--output-dir", str(out)]
        )
    assert code == 2
    message = " ".join(err.getvalue()[err.getvalue().index("error: ") :].split())
    assert (
        message == f"error: --drop-label-issues {missing}: no such file. Give the CSV that 'nlp-transfer audit' wrote."
    )
    assert not out.exists()
