"""Data findings of the hostile-input run, through the CLI as a user types them: each bad input stops before the
model loads with one paragraph (exit code 2, no traceback) naming the problem, and no library noise before it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer.cli import main
from nlp_transfer.data_checks import refuse_joined_labels
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
    assert "8 of 12 rows contain ';'" in message and "--label-separator ';'" in message
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
    assert "--text holds 1 empty texts (number 2 of those given, counted from 1)" in _error(capsys.readouterr().err)
    texts = write_csv(tmp_path / "texts.csv", [{"id": 1, "text": "fine"}, {"id": 2, "text": " "}])
    assert main(["predict", "--model", str(tmp_path / "any"), "--file", str(texts)]) == 2
    assert f"{texts} has 1 rows with an empty 'text' (rows 2, counted from 1 after the header)" in _error(
        capsys.readouterr().err
    )


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
