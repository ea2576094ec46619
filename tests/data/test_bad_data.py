"""Bad data files and labels are refused before training with one clear error (exit code 2, no traceback),
or warned about with a count: what the readers accepted silently or reported without naming the line."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer.cli import app as cli
from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.columns import ROW_COLUMN, column_values
from nlp_transfer.data.prepare import PreparedData, load_data
from nlp_transfer.evaluation.figures import MAX_PLOTTED_LABELS, plot_report
from nlp_transfer.outputs import CALIBRATION_PNG, CONFUSION_MATRIX_PNG


def _train(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *data_args: str) -> tuple[int, str]:
    """Run `nlp-transfer train` in process; the exit code and stderr with its line wrapping undone."""
    out = tmp_path / "run"
    code = cli.main(
        ["train", "--model", str(checkpoint), "--output-dir", str(out), "--num-train-epochs", "1", *map(str, data_args)]
    )
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return code, " ".join(stderr.split())


def _refused(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *data_args: str) -> str:
    """The error message of a run that must stop with exit code 2 before any output is written."""
    code, stderr = _train(checkpoint, tmp_path, capsys, *data_args)
    assert code == 2, stderr
    assert not (tmp_path / "run").exists()
    return stderr


def _load(**options) -> PreparedData:
    return load_data(DataArguments(**options))


def _csv_lines(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _plain_lines(rows: list[dict]) -> list[str]:
    """text,label lines without quoting (the texts' commas dropped), so that a test can break one line."""
    return ["text,label"] + [f"{row['text'].replace(',', '')},{row['label']}" for row in rows]


# -------------------------------------------------------------------------------------------- files


def test_a_folder_as_train_file_is_named_a_folder(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data"
    write_csv(folder / "train.csv", sentiment_rows(4))

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", folder)

    assert f"{folder} is a folder, not a file" in message
    assert "It holds: train.csv" in message


def test_a_latin1_file_names_the_encoding_and_the_first_bad_line(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _plain_lines(sentiment_rows(6))
    lines[6] = "un café très décevant,negative"  # line 7 of the file
    path = _csv_lines(tmp_path / "latin1.csv", lines, "latin-1")

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", path)

    assert "is not valid utf-8 text: line 7 has the byte(s) 0xe9" in message
    assert "re-save it as UTF-8" in message and "--encoding latin-1" in message


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_encoding_option_reads_a_latin1_file(tmp_path: Path, suffix: str) -> None:
    rows = sentiment_rows(6)
    rows[5]["text"] = "un café très décevant"
    train = tmp_path / f"train{suffix}"
    if suffix == ".csv":
        train.write_bytes("\n".join(_plain_lines(rows)).encode("latin-1"))
    else:
        train.write_bytes("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("latin-1"))

    prepared = _load(train_file=str(train), encoding="latin-1")

    texts = column_values(prepared.splits["train"], "text") + column_values(prepared.splits["validation"], "text")
    assert "un café très décevant" in texts


def test_an_unknown_encoding_is_refused(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write_csv(tmp_path / "train.csv", sentiment_rows(6))

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", train, "--encoding", "latin-9x")

    assert "--encoding 'latin-9x' is not a text encoding" in message


def test_an_unterminated_quote_names_the_line_where_it_opens(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _plain_lines(sentiment_rows(6))
    lines[7] = '"never closed,positive'  # line 8
    path = _csv_lines(tmp_path / "train.csv", lines)

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", path)

    assert "unterminated quote" in message and "starts on line 8" in message


def test_a_row_with_more_fields_than_the_header_names_its_line(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _plain_lines(sentiment_rows(6))
    lines[9] = "fine product, would buy again,positive"  # line 10: an unquoted comma
    path = _csv_lines(tmp_path / "train.csv", lines)

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", path)

    assert "1 row with more fields than its header's 2 (text, label): line 10 has 3" in message
    assert "must be in quotes" in message


def test_a_too_long_first_row_is_refused_not_read_as_an_index(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pandas takes a first column for the index when the first row has one field more: columns shift silently."""
    lines = _plain_lines(sentiment_rows(6))
    lines[1] = "hello, world,positive"
    path = _csv_lines(tmp_path / "train.csv", lines)

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", path)

    assert "line 2 has 3" in message


def test_a_malformed_json_line_is_named(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [json.dumps(row) for row in sentiment_rows(6)]
    lines[4] = '{"text": "cut short", "label": '
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", path)

    assert "malformed JSON line: line 5 is not valid JSON" in message


def test_a_tab_separated_file_named_csv_is_told_to_be_renamed(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = sentiment_rows(6)
    path = tmp_path / "train.csv"
    path.write_text("text\tlabel\n" + "".join(f"{r['text']}\t{r['label']}\n" for r in rows), encoding="utf-8")

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", path)

    assert "looks tab-separated" in message and "Rename it to .tsv" in message
    renamed = path.rename(tmp_path / "train.tsv")
    assert _load(train_file=str(renamed)).schema.names == ["negative", "positive"]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ({"data": sentiment_rows(6)}, "the records seem to be the list under the key 'data'"),
        ({"text": ["good", "bad"], "label": ["positive", "negative"]}, "with columns as lists of values"),
        ({"text": "good", "label": "positive"}, "(keys 'text', 'label')"),
    ],
)
def test_a_json_file_with_one_object_is_refused(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: dict, detail: str
) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps(content, indent=2), encoding="utf-8")

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", path)

    assert "holds one JSON object" in message and detail in message
    assert "array of records" in message


def test_json_lines_in_a_json_file_still_load(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text("".join(json.dumps(row) + "\n" for row in sentiment_rows(6)), encoding="utf-8")

    prepared = _load(train_file=str(path))

    assert sum(len(split) for split in prepared.splits.values()) == 12


# ------------------------------------------------------------------------------------------- labels


@pytest.mark.parametrize(("value", "words"), [("inf", "inf in row 3"), ("-inf", "-inf in row 3"), ("nan", "rows 3")])
def test_a_non_finite_regression_target_is_refused_naming_the_row(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, words: str
) -> None:
    rows = [{"text": f"text number {i}", "label": f"{0.5 + i / 4}"} for i in range(12)]
    rows[2]["label"] = value
    train = write_csv(tmp_path / "train.csv", rows)

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", train, "--task", "regression")

    assert words in message


def test_inf_among_fractions_is_refused_as_a_regression_label(tmp_path: Path) -> None:
    from nlp_transfer.errors import UserInputError

    rows = [{"text": f"text number {i}", "label": f"{0.5 + i / 4}"} for i in range(12)]
    rows[6]["label"] = "inf"
    train = write_csv(tmp_path / "train.csv", rows)

    with pytest.raises(UserInputError, match=r"finite numbers.*1 rows with an infinite or NaN value.*inf in row 7"):
        _load(train_file=str(train))


def test_integer_labels_mixed_with_names_are_refused_naming_an_example_of_each(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = sentiment_rows(6)
    for i, row in enumerate(rows):
        row["label"] = ["0", "1", "positive"][i % 3]
    train = write_csv(tmp_path / "train.csv", rows)

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", train)

    assert "mixes integer labels and label names: 8 rows hold integers (e.g. '0' in row 1)" in message
    assert "4 rows hold names (e.g. 'positive' in row 3)" in message


EMOTIONS = ["joy", "love", "anger", "fear", "sadness", "surprise"]


def _emotion_rows(labels: list[str]) -> list[dict]:
    return [{"text": f"comment number {i}", "label": label} for i, label in enumerate(labels)]


def test_joined_labels_in_a_minority_of_rows_are_refused_with_the_separator_hint(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GoEmotions-like: most rows hold one emotion, 6 combinations of them hold two."""
    single = [EMOTIONS[i % 6] for i in range(30)]
    joined = ["joy;love", "anger;fear", "joy;surprise", "fear;sadness", "love;surprise", "anger;sadness"]
    train = write_csv(tmp_path / "train.csv", _emotion_rows(single + joined))

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", train)

    assert "joined by ';': 6 of 36 rows contain ';', in 6 distinct combinations" in message
    assert "--label-separator ';'" in message and "(12 classes)" in message


def test_joined_labels_in_most_rows_are_refused(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every row holds two labels ('a|b'): no label is ever seen on its own."""
    labels = ["joy|love", "anger|fear", "joy|fear", "love|anger"] * 4
    train = write_csv(tmp_path / "train.csv", _emotion_rows(labels))

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", train)

    assert "joined by '|': 16 of 16 rows contain '|'" in message and "--label-separator '|'" in message


def test_joined_labels_train_as_multi_label_with_the_separator_or_as_classes_with_task(tmp_path: Path) -> None:
    single = [EMOTIONS[i % 6] for i in range(30)]
    joined = ["joy;love", "anger;fear", "joy;surprise", "fear;sadness", "love;surprise", "anger;sadness"]
    train = str(write_csv(tmp_path / "train.csv", _emotion_rows(single + joined)))

    assert _load(train_file=train, label_separator=";").schema.names == sorted(EMOTIONS)
    assert _load(train_file=train, task="single_label").schema.num_labels == 12


@pytest.mark.parametrize(
    "names",
    [
        ["Washington, D.C.", "Paris", "Berlin", "Rome", "Austin, Texas", "Madrid"],  # a few names with a comma
        ["Austen, Jane", "Dickens, Charles", "Eliot, George", "Bronte, Emily"],  # a comma in every name
        ["sports|football", "sports|tennis", "news|politics", "news|science"],  # a hierarchy, not a label set
    ],
)
def test_names_that_contain_a_separator_are_ordinary_classes(tmp_path: Path, names: list[str]) -> None:
    rows = [{"text": f"passage number {i}", "label": names[i % len(names)]} for i in range(8 * len(names))]
    train = write_csv(tmp_path / "train.csv", rows)

    prepared = _load(train_file=str(train))

    assert prepared.schema.task == "single_label"
    assert prepared.schema.names == sorted(names)


def test_a_validation_file_with_a_class_absent_from_train_is_refused(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write_csv(tmp_path / "train.csv", sentiment_rows(6))
    validation = write_csv(tmp_path / "validation.csv", [*sentiment_rows(2), {"text": "so-so", "label": "neutral"}])

    message = _refused(tiny_checkpoint, tmp_path, capsys, "--train-file", train, "--validation-file", validation)

    assert "labels never seen in the training data: 'neutral'" in message and "(rows 5)" in message


@pytest.mark.parametrize("seed", range(6))
def test_a_carved_validation_split_never_takes_every_row_of_a_class(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    """A class of one or two rows defeats stratification; its rows stay in train whatever the seed."""
    rows = [*sentiment_rows(10), {"text": "so-so 1", "label": "neutral"}, {"text": "meh", "label": "mixed"}]
    rows.append({"text": "so-so 2", "label": "neutral"})
    train = write_csv(tmp_path / "train.csv", rows)

    with caplog.at_level(logging.WARNING, logger="nlp_transfer"):
        prepared = _load(train_file=str(train), validation_fraction=0.3, split_seed=seed)

    names = prepared.schema.names
    train_labels = {names[i] for i in column_values(prepared.splits["train"], "labels")}
    assert train_labels == {"negative", "positive", "neutral", "mixed"}
    validation_rows = set(column_values(prepared.splits["validation"], ROW_COLUMN))
    assert validation_rows and not validation_rows & set(column_values(prepared.splits["train"], ROW_COLUMN))
    moved = [r.getMessage() for r in caplog.records if "validation split had taken" in r.getMessage()]
    assert all("have too few rows to appear in both splits" in m for m in moved)


def test_a_carved_multi_label_split_keeps_every_label_in_train(tmp_path: Path) -> None:
    rows = [{"text": f"comment number {i}", "labels": ["joy"] if i % 2 else ["anger"]} for i in range(20)]
    rows.append({"text": "a rare one", "labels": ["joy", "grief"]})
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    for seed in range(6):
        prepared = _load(train_file=str(path), validation_fraction=0.5, split_seed=seed)
        grief = prepared.schema.names.index("grief")
        assert any(vector[grief] for vector in column_values(prepared.splits["train"], "labels"))


# -------------------------------------------------------------------------------------------- plots


def _report(labels: int) -> SimpleNamespace:
    matrix = [[1 if i == j else 0 for j in range(labels)] for i in range(labels)]
    calibration = [{"lower": 0.5, "upper": 1.0, "accuracy": 1.0, "confidence": 0.75, "count": labels}]
    return SimpleNamespace(confusion_matrix=matrix, calibration=calibration, metrics={"ece": 0.25})


def test_too_many_labels_skip_the_confusion_matrix_plot_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    labels = [f"class_{i}" for i in range(MAX_PLOTTED_LABELS + 1)]

    with caplog.at_level(logging.WARNING, logger="nlp_transfer"):
        plots = plot_report(_report(len(labels)), labels, tmp_path, "validation")

    assert plots == {"split": "validation", "calibration": CALIBRATION_PNG}
    assert not (tmp_path / CONFUSION_MATRIX_PNG).exists() and (tmp_path / CALIBRATION_PNG).is_file()
    assert f"Confusion-matrix plot skipped: {len(labels)} labels are more than the {MAX_PLOTTED_LABELS}" in caplog.text


def test_a_few_labels_still_get_the_confusion_matrix_plot(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="nlp_transfer"):
        plots = plot_report(_report(3), ["a", "b", "c"], tmp_path, "validation")

    assert plots["confusion_matrix"] == CONFUSION_MATRIX_PNG and (tmp_path / CONFUSION_MATRIX_PNG).is_file()
    assert "skipped" not in caplog.text


# --------------------------------------------------------------------------------------- duplicates


def test_validation_texts_also_in_train_are_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train_rows = sentiment_rows(12)
    validation_rows = [*train_rows[:12], *[{"text": f"a new text {i}", "label": "positive"} for i in range(5)]]
    train = write_csv(tmp_path / "train.csv", train_rows)
    validation = write_csv(tmp_path / "validation.csv", validation_rows)

    with caplog.at_level(logging.WARNING, logger="nlp_transfer"):
        _load(train_file=str(train), validation_file=str(validation))

    assert "12 validation texts also appear in train (e.g. 'great product, works well 0', row 1 of" in caplog.text


def test_training_texts_with_conflicting_labels_are_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = sentiment_rows(12)
    rows += [
        {"text": rows[i]["text"], "label": "negative" if rows[i]["label"] == "positive" else "positive"}
        for i in (0, 1, 2)
    ]
    rows.append(dict(rows[3]))  # an exact duplicate: same text, same label, no conflict
    train = write_csv(tmp_path / "train.csv", rows)
    validation = write_csv(tmp_path / "validation.csv", [{"text": f"new {i}", "label": "positive"} for i in range(4)])

    with caplog.at_level(logging.WARNING, logger="nlp_transfer"):
        _load(train_file=str(train), validation_file=str(validation))

    assert "3 texts appear in the training data" in caplog.text and "with different labels" in caplog.text
    assert "'great product, works well 0' in rows 1, 25" in caplog.text
    assert "also appear in train" not in caplog.text


def test_clean_data_gives_no_duplicate_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="nlp_transfer"):
        _load()  # the bundled demo data

    assert "also appear" not in caplog.text and "different labels" not in caplog.text
