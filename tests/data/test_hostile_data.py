"""Data findings of the hostile-input run, through the CLI as a user types them: each bad input stops before the
model loads with one paragraph (exit code 2, no traceback) naming the problem, and no library noise before it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer.cli.app import main
from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.checks import refuse_joined_labels
from nlp_transfer.data.labels import LabelSchema
from nlp_transfer.data.prepare import load_data
from nlp_transfer.data.reading import read_labelled
from nlp_transfer.errors import UserInputError


def _error(err: str) -> str:
    assert "Traceback" not in err
    assert err.count("error: ") == 1, err
    return " ".join(err[err.index("error: ") :].split())


def _train(tmp_path: Path, train: Path, *extra: str) -> list[str]:
    return ["train", "--train-file", str(train), "--output-dir", str(tmp_path / "out"), *extra]


def test_joined_labels_in_a_small_file_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"text": f"billing question {i}", "label": "billing"} for i in range(4)]
    rows += [{"text": f"billing and parcel {i}", "label": "billing;delivery"} for i in range(4)]
    rows += [{"text": f"app crash, parcel {i}", "label": "technical;delivery"} for i in range(4)]
    assert main(_train(tmp_path, write_csv(tmp_path / "tickets.csv", rows))) == 2
    message = _error(capsys.readouterr().err)
    assert "Column 'label' of" in message and "looks like multi-label data, several labels joined by ';'" in message
    assert "8 of 12 rows contain ';', in 1 distinct combination of labels (e.g. 'billing;delivery' in row 5)" in message
    assert "--label-separator ';'" in message and "--task single_label" in message
    assert not (tmp_path / "out").exists()


def test_a_comma_in_names_is_not_taken_for_joined_labels() -> None:
    values = ["Paris", "Paris, Texas", "Berlin", "Rome"] * 3
    refuse_joined_labels(values, list(range(1, len(values) + 1)), "cities.csv", "label")  # no refusal
    with pytest.raises(UserInputError, match="joined by ','"):
        refuse_joined_labels(["a", "b", "a, b"] * 3, list(range(1, 10)), "x.csv", "label")


@pytest.mark.parametrize(
    ("header", "named"), [("text,label,label", "'label' (columns 2, 3)"), ("text,text,label", "'text' (columns 1, 2)")]
)
def test_a_header_repeating_a_column_is_refused(
    header: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "repeated.csv"
    data.write_text(header + "\n" + "\n".join(f"good {i},x,positive" for i in range(10)) + "\n", encoding="utf-8")
    assert main(_train(tmp_path, data)) == 2
    message = _error(capsys.readouterr().err)
    assert f"The header of {data} names a column more than once: {named}." in message


def test_an_empty_text_is_refused_in_predict_as_in_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(tmp_path / "any"), "--text", "fine", "--text", "  "]) == 2
    assert "--text holds an empty text (empty or only spaces; number 2 of the 2 given)" in _error(
        capsys.readouterr().err
    )
    texts = write_csv(tmp_path / "texts.csv", [{"id": 1, "text": "fine"}, {"id": 2, "text": " "}])
    assert main(["predict", "--model", str(tmp_path / "any"), "--file", str(texts), "--on-empty", "error"]) == 2
    assert f"{texts} has an empty text (empty or only spaces) in column 'text' (row 2, counted from 1 after" in _error(
        capsys.readouterr().err
    )


def test_an_empty_second_text_is_refused_in_predict_as_in_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was read as the text 'None' and given a label."""
    rows = [{"sentence1": "a cat sat", "sentence2": "a cat is sitting"}, {"sentence1": "it rains", "sentence2": ""}]
    pairs = write_csv(tmp_path / "pairs.csv", rows)
    assert main(["predict", "--model", str(tmp_path / "any"), "--file", str(pairs), "--on-empty", "error"]) == 2
    message = _error(capsys.readouterr().err)
    assert f"{pairs} has an empty text (empty or only spaces) in column 'sentence2' (row 2," in message


def test_a_label_that_is_a_json_object_is_refused_by_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A dict label was a TypeError traceback ('unhashable type: dict')."""
    data = tmp_path / "objects.jsonl"
    lines = [json.dumps({"text": f"text {i}", "label": {"name": "x"} if i == 3 else "y"}) for i in range(1, 7)]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(_train(tmp_path, data)) == 2
    message = _error(capsys.readouterr().err)
    assert f"Column 'label' of {data} holds a JSON object or nested list instead of a label in 1 row (e.g." in message
    assert 'e.g. {"name": "x"} in row 3' in message


def test_a_default_column_missing_from_the_validation_file_is_not_called_an_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write_csv(tmp_path / "train.csv", sentiment_rows())
    validation = write_csv(tmp_path / "val.csv", [{"body": r["text"], "label": r["label"]} for r in sentiment_rows(2)])
    assert main(_train(tmp_path, train, "--validation-file", str(validation))) == 2
    message = _error(capsys.readouterr().err)
    assert f"No --text-column was given: 'text' is the column found by its default name in {train}" in message
    assert f"Rename the column in {validation}" in message


def test_a_file_named_parquet_that_is_not_parquet_is_named_so(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.parquet"
    data.write_text("text,label\na,x\n", encoding="utf-8")
    assert main(_train(tmp_path, data)) == 2
    err = capfd.readouterr().err
    message = _error(err)
    assert f"{data} is not a Parquet file (it does not start with Parquet's 'PAR1' marker)" in message
    assert "give it that suffix (.csv" in message and "magic bytes" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_said_to_be_no_regular_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    assert main(_train(tmp_path, pipe)) == 2
    message = _error(capsys.readouterr().err)
    assert f"Data file {pipe} is not a regular file (a named pipe, socket or device)" in message
    assert "does not exist" not in message


@pytest.mark.parametrize("command", ["train", "predict"])  # evaluate reads its file the way predict does
def test_a_missing_text_column_names_the_columns_looked_for(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(tmp_path / "body.csv", [{"body": r["text"], "label": r["label"]} for r in sentiment_rows()])
    argv = _train(tmp_path, data) if command == "train" else [command, "--model", str(tmp_path), "--file", str(data)]
    assert main(argv) == 2
    message = _error(capsys.readouterr().err)
    assert f"No text column found in {data}: looked for 'text' or 'sentence' (or 'sentence1' + 'sentence2'" in message
    assert "its columns are body, label" in message and "None" not in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": \n'),
        ("bad.csv", 'text,label\na,x\nb,y,z,w\n"c,\n'),
    ],
)
def test_a_bad_file_prints_only_the_packages_paragraph(
    name: str, content: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / name
    data.write_text(content, encoding="utf-8")
    assert main(_train(tmp_path, data)) == 2
    err = capfd.readouterr().err
    assert _error(err).startswith(f"error: {data} has ")
    noise = err[: err.index("error: ")]
    for word in ("ERROR", "pyarrow", "pandas", "Generating", "Failed to"):
        assert word not in noise
    assert not [r for r in caplog.records if r.name.startswith("datasets") and r.levelname == "ERROR"]


def test_evaluate_without_a_label_column_names_the_columns_looked_for(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "scored.csv", [{"text": r["text"], "stars": 5} for r in sentiment_rows(2)])
    schema = LabelSchema("single_label", ["negative", "positive"])
    with pytest.raises(UserInputError) as missing:
        read_labelled(str(data), schema)
    assert f"No label column found in {data}: looked for 'label' or 'labels'; its columns are text, stars." in str(
        missing.value
    )
    with pytest.raises(UserInputError, match=r"Column 'grade' \(--label-column\) is not in .*: text, stars\."):
        read_labelled(str(data), schema, label_column="grade")


def test_a_good_file_is_read_without_progress_bars(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    train = write_csv(tmp_path / "train.csv", sentiment_rows())
    assert load_data(DataArguments(train_file=str(train))).schema.names == ["negative", "positive"]
    assert "Generating" not in capfd.readouterr().err
