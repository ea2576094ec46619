"""load_data and tokenize: file formats, demo data, task inference, labels, splits, subsets, bad input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from conftest import sentiment_rows, write_csv
from transformers import AutoTokenizer

from nlp_transfer.config.data import DataArguments
from nlp_transfer.data.columns import ROW_COLUMN, column_values
from nlp_transfer.data.prepare import PreparedData, load_data
from nlp_transfer.data.tokenize import resolve_max_length, tokenize
from nlp_transfer.errors import UserInputError
from nlp_transfer.training.verification import RELOAD_CHECK_ROWS, _validation_inputs


def _load(seed: int = 42, **options) -> PreparedData:
    return load_data(DataArguments(**options), seed)


def _sizes(prepared: PreparedData) -> dict[str, int]:
    return {name: len(split) for name, split in prepared.splits.items()}


def _rows(prepared: PreparedData, split: str = "train") -> list[int]:
    return list(prepared.splits[split][ROW_COLUMN])


@pytest.fixture(scope="module")
def tokenizer(bundled_tokenizer_path: Path):
    return AutoTokenizer.from_pretrained(bundled_tokenizer_path)


def _three_class_rows(counts: dict[str, int]) -> list[dict]:
    """Interleaved rows of several classes, `counts[label]` rows each."""
    rows, remaining, i = [], dict(counts), 0
    while any(remaining.values()):
        for label in counts:
            if remaining[label]:
                rows.append({"text": f"message {i} about {label}", "label": label})
                remaining[label] -= 1
                i += 1
    return rows


# ------------------------------------------------------------------------------------------ formats


def _write_format(path: Path, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows)
    suffix = path.suffix
    if suffix == ".csv":
        write_csv(path, rows)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")  # a JSON array of records
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_every_file_format_loads_the_same_rows_and_labels(tmp_path: Path, suffix: str) -> None:
    rows = sentiment_rows(6)
    rows[0]["text"] = 'quoted "text", with a comma'
    train = _write_format(tmp_path / f"train{suffix}", rows)
    validation = _write_format(tmp_path / f"validation{suffix}", sentiment_rows(2))

    prepared = _load(train_file=str(train), validation_file=str(validation))

    assert prepared.schema.task == "single_label"
    assert prepared.schema.names == ["negative", "positive"]
    assert prepared.text_column == "text"
    assert prepared.text_pair_column is None
    assert _sizes(prepared) == {"train": 12, "validation": 4}
    assert prepared.splits["train"]["text"] == [row["text"] for row in rows]
    assert prepared.splits["train"]["labels"] == [1 if row["label"] == "positive" else 0 for row in rows]
    assert _rows(prepared) == list(range(1, 13))
    assert prepared.splits["validation"]["labels"] == [1, 0, 1, 0]
    assert prepared.splits["train"].column_names == ["text", "labels", ROW_COLUMN]
    assert prepared.sources == {"train": str(train), "validation": str(validation)}


def test_test_file_is_loaded_as_a_third_split(sentiment_files: dict[str, Path], tmp_path: Path) -> None:
    test = write_csv(tmp_path / "test.csv", sentiment_rows(3))
    prepared = _load(
        train_file=str(sentiment_files["train"]),
        validation_file=str(sentiment_files["validation"]),
        test_file=str(test),
    )
    assert _sizes(prepared) == {"train": 24, "validation": 8, "test": 6}
    assert prepared.sources["test"] == str(test)
    assert prepared.splits["test"]["labels"] == [1, 0, 1, 0, 1, 0]


# ---------------------------------------------------------------------------------------- demo data


def test_bundled_demo_data_is_used_without_data_options() -> None:
    prepared = _load()
    assert prepared.schema.task == "single_label"
    assert prepared.schema.names == ["billing", "delivery", "technical"]
    assert prepared.schema.id2label == {0: "billing", 1: "delivery", 2: "technical"}
    assert _sizes(prepared) == {"train": 300, "validation": 90}
    assert prepared.sources["train"].endswith("train.csv")
    assert prepared.sources["validation"].endswith("validation.csv")
    assert set(prepared.splits["train"]["labels"]) == {0, 1, 2}
    assert prepared.dropped_rows == {}


# ---------------------------------------------------------------------------------- task inference


def test_string_labels_are_single_label_sorted_alphabetically(tmp_path: Path) -> None:
    labels = ["zebra", "apple", "mango", "apple", "zebra", "mango"]
    path = write_csv(tmp_path / "t.csv", [{"text": f"text {i}", "label": lab} for i, lab in enumerate(labels)])
    prepared = _load(train_file=str(path), validation_file=str(path))
    assert prepared.schema.task == "single_label"
    assert prepared.schema.names == ["apple", "mango", "zebra"]
    assert prepared.schema.id2label == {0: "apple", 1: "mango", 2: "zebra"}
    assert prepared.schema.label2id == {"apple": 0, "mango": 1, "zebra": 2}
    assert prepared.schema.problem_type == "single_label_classification"
    assert prepared.splits["train"]["labels"] == [2, 0, 1, 0, 2, 1]


def test_integer_labels_are_single_label(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"text": f"text {i}", "label": i % 3} for i in range(9)])
    prepared = _load(train_file=str(path), validation_file=str(path))
    assert prepared.schema.task == "single_label"
    assert prepared.schema.names == ["0", "1", "2"]
    assert prepared.schema.num_labels == 3
    assert prepared.splits["train"]["labels"] == [0, 1, 2] * 3


def test_class_names_map_integer_labels_to_names(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"text": f"text {i}", "label": i % 2} for i in range(6)])
    prepared = _load(train_file=str(path), validation_file=str(path), class_names="negative, positive")
    assert prepared.schema.names == ["negative", "positive"]
    assert prepared.schema.id2label == {0: "negative", 1: "positive"}
    assert prepared.splits["train"]["labels"] == [0, 1, 0, 1, 0, 1]
    assert prepared.splits["train"].features["labels"].names == ["negative", "positive"]


def test_class_names_too_few_for_the_labels(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"text": f"text {i}", "label": i % 3} for i in range(6)])
    with pytest.raises(UserInputError, match=r"--class-names gives 2 names for integer labels 0\.\.1.*\[2\]"):
        _load(train_file=str(path), validation_file=str(path), class_names="negative,positive")


def test_non_integer_numbers_are_regression(tmp_path: Path) -> None:
    scores = [0.5, 3.8, 1.0, 2.25]
    path = write_csv(tmp_path / "t.csv", [{"text": f"text {i}", "label": s} for i, s in enumerate(scores)])
    prepared = _load(train_file=str(path), validation_file=str(path))
    assert prepared.schema.task == "regression"
    assert prepared.schema.num_labels == 1
    assert prepared.schema.id2label == {0: "score"}
    assert prepared.schema.problem_type == "regression"
    assert prepared.splits["train"]["labels"] == pytest.approx(scores)
    assert prepared.splits["train"].features["labels"].dtype == "float32"


def test_task_regression_forces_integer_scores_to_regression(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"text": f"text {i}", "label": i % 5} for i in range(10)])
    assert _load(train_file=str(path), validation_file=str(path)).schema.task == "single_label"
    prepared = _load(train_file=str(path), validation_file=str(path), task="regression")
    assert prepared.schema.task == "regression"
    assert prepared.splits["train"]["labels"] == [0.0, 1.0, 2.0, 3.0, 4.0] * 2


def test_regression_refuses_a_non_numeric_label(tmp_path: Path) -> None:
    rows = [{"text": "a", "label": "1.5"}, {"text": "b", "label": "high"}, {"text": "c", "label": "2"}]
    path = write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(UserInputError, match=r"Regression needs numeric labels.*row 2 has 'high'"):
        _load(train_file=str(path), validation_file=str(path), task="regression")


def test_json_list_labels_are_multi_label(tmp_path: Path) -> None:
    label_lists = [["joy"], ["anger", "joy"], [], ["sad"]]
    rows = [{"text": f"text {i}", "label": labels} for i, labels in enumerate(label_lists)]
    path = _write_format(tmp_path / "t.jsonl", rows)
    prepared = _load(train_file=str(path), validation_file=str(path))
    assert prepared.schema.task == "multi_label"
    assert prepared.schema.names == ["anger", "joy", "sad"]
    assert prepared.schema.problem_type == "multi_label_classification"
    assert prepared.splits["train"]["labels"] == [
        [0.0, 1.0, 0.0],
        [1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
    ]


def test_label_separator_means_multi_label_and_an_empty_cell_means_no_labels(tmp_path: Path) -> None:
    cells = ["joy", "anger; joy", "", "sad"]
    path = write_csv(tmp_path / "t.csv", [{"text": f"text {i}", "label": c} for i, c in enumerate(cells)])
    prepared = _load(train_file=str(path), validation_file=str(path), label_separator=";")
    assert prepared.schema.task == "multi_label"
    assert prepared.schema.names == ["anger", "joy", "sad"]
    assert prepared.splits["train"]["labels"] == [
        [0.0, 1.0, 0.0],
        [1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0],  # the empty cell: no label applies, not an invalid row
        [0.0, 0.0, 1.0],
    ]
    assert prepared.dropped_rows == {}


def test_multi_label_validation_label_never_seen_in_train(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", [{"text": f"t {i}", "label": ["joy", "sad"][i % 2]} for i in range(4)])
    validation = write_csv(tmp_path / "val.csv", [{"text": "a", "label": "joy"}, {"text": "b", "label": "joy;fear"}])
    with pytest.raises(UserInputError, match=r"labels never seen in the training data: 'fear'.*\(rows 2\)"):
        _load(train_file=str(train), validation_file=str(validation), label_separator=";")


# --------------------------------------------------------------------------------------- text pairs


def test_sentence1_sentence2_columns_are_detected_as_a_pair(tmp_path: Path) -> None:
    rows = [{"sentence1": f"first {i}", "sentence2": f"second {i}", "label": i % 2} for i in range(6)]
    path = write_csv(tmp_path / "pairs.csv", rows)
    prepared = _load(train_file=str(path), validation_file=str(path))
    assert prepared.text_column == "sentence1"
    assert prepared.text_pair_column == "sentence2"
    assert prepared.splits["train"].column_names == ["sentence1", "sentence2", "labels", ROW_COLUMN]
    assert prepared.splits["train"]["sentence2"][:2] == ["second 0", "second 1"]


def test_explicit_text_and_pair_columns(tmp_path: Path) -> None:
    rows = [{"question": f"q {i}", "passage": f"p {i}", "answerable": ["no", "yes"][i % 2]} for i in range(6)]
    path = write_csv(tmp_path / "qp.csv", rows)
    prepared = _load(
        train_file=str(path),
        validation_file=str(path),
        text_column="question",
        text_pair_column="passage",
        label_column="answerable",
    )
    assert prepared.text_column == "question"
    assert prepared.text_pair_column == "passage"
    assert prepared.schema.names == ["no", "yes"]
    assert prepared.splits["train"].column_names == ["question", "passage", "labels", ROW_COLUMN]


def test_sentence_column_is_a_default_text_column(tmp_path: Path) -> None:
    rows = [{"sentence": f"s {i}", "labels": i % 2} for i in range(4)]
    path = write_csv(tmp_path / "s.csv", rows)
    prepared = _load(train_file=str(path), validation_file=str(path))
    assert prepared.text_column == "sentence"
    assert prepared.text_pair_column is None
    assert prepared.splits["train"]["labels"] == [0, 1, 0, 1]


# ------------------------------------------------------------------------------- carved validation


def test_carved_validation_is_stratified_sized_and_disjoint(tmp_path: Path) -> None:
    counts = {"billing": 40, "delivery": 30, "technical": 30}
    path = write_csv(tmp_path / "train.csv", _three_class_rows(counts))
    prepared = _load(train_file=str(path), validation_fraction=0.2)

    assert _sizes(prepared) == {"train": 80, "validation": 20}
    assert prepared.sources["validation"] == f"20% of train ({path}), seed 42"
    names = prepared.schema.names
    held = Counter(names[i] for i in prepared.splits["validation"]["labels"])
    for label, count in counts.items():
        assert abs(held[label] - 0.2 * count) <= 1, (label, held)
    train_rows, validation_rows = set(_rows(prepared)), set(_rows(prepared, "validation"))
    assert train_rows.isdisjoint(validation_rows)
    assert train_rows | validation_rows == set(range(1, 101))
    # Both splits keep file order.
    assert _rows(prepared) == sorted(train_rows)
    assert _rows(prepared, "validation") == sorted(validation_rows)


def test_carved_validation_size_follows_the_fraction(sentiment_files: dict[str, Path]) -> None:
    prepared = _load(train_file=str(sentiment_files["train"]))  # 24 rows, default fraction 0.1
    assert abs(_sizes(prepared)["validation"] - 2.4) <= 1
    assert sum(_sizes(prepared).values()) == 24


def test_carved_validation_depends_only_on_the_seed(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", _three_class_rows({"a": 20, "b": 20, "c": 20}))
    first = _load(seed=1, train_file=str(path), validation_fraction=0.25)
    again = _load(seed=1, train_file=str(path), validation_fraction=0.25)
    other = _load(seed=2, train_file=str(path), validation_fraction=0.25)
    assert _rows(first, "validation") == _rows(again, "validation")
    assert _rows(first) == _rows(again)
    assert _rows(first, "validation") != _rows(other, "validation")
    assert len(_rows(other, "validation")) == len(_rows(first, "validation")) == 15


def test_carved_validation_for_multi_label_data(tmp_path: Path) -> None:
    rows = [{"text": f"t {i}", "label": ["joy", "sad", "joy;sad", ""][i % 4]} for i in range(20)]
    path = write_csv(tmp_path / "train.csv", rows)
    prepared = _load(train_file=str(path), label_separator=";", validation_fraction=0.2)
    assert _sizes(prepared) == {"train": 16, "validation": 4}
    assert set(_rows(prepared)).isdisjoint(_rows(prepared, "validation"))


@pytest.mark.parametrize("fraction", [1.5, 0.0, 1.0, -0.1])
def test_validation_fraction_out_of_range(sentiment_files: dict[str, Path], fraction: float) -> None:
    with pytest.raises(UserInputError, match=f"--validation-fraction must be between 0 and 1.*not {fraction}"):
        _load(train_file=str(sentiment_files["train"]), validation_fraction=fraction)


# ------------------------------------------------------------------------------------------ subsets


def test_max_train_samples_is_a_deterministic_subset(sentiment_files: dict[str, Path]) -> None:
    options = {
        "train_file": str(sentiment_files["train"]),
        "validation_file": str(sentiment_files["validation"]),
        "max_train_samples": 10,
    }
    first, again, other = _load(seed=3, **options), _load(seed=3, **options), _load(seed=4, **options)
    assert _sizes(first) == {"train": 10, "validation": 8}
    assert _rows(first) == _rows(again)
    assert _rows(first) != _rows(other)
    assert _rows(first) == sorted(_rows(first))  # kept in file order
    assert set(_rows(first)) <= set(range(1, 25))


def test_max_eval_samples_applies_to_validation_and_test(sentiment_files: dict[str, Path], tmp_path: Path) -> None:
    test = write_csv(tmp_path / "test.csv", sentiment_rows(6))
    options = {
        "train_file": str(sentiment_files["train"]),
        "validation_file": str(sentiment_files["validation"]),
        "test_file": str(test),
        "max_eval_samples": 5,
    }
    first, again = _load(**options), _load(**options)
    assert _sizes(first) == {"train": 24, "validation": 5, "test": 5}
    assert _rows(first, "validation") == _rows(again, "validation")
    assert _rows(first, "test") == _rows(again, "test")


def test_subset_larger_than_the_split_keeps_every_row(sentiment_files: dict[str, Path]) -> None:
    prepared = _load(
        train_file=str(sentiment_files["train"]),
        validation_file=str(sentiment_files["validation"]),
        max_train_samples=1000,
        max_eval_samples=1000,
    )
    assert _sizes(prepared) == {"train": 24, "validation": 8}


def test_subset_size_must_be_positive(sentiment_files: dict[str, Path]) -> None:
    with pytest.raises(UserInputError, match="--max-train-samples must be a positive number, not 0"):
        _load(train_file=str(sentiment_files["train"]), max_train_samples=0)


# -------------------------------------------------------------------------------------- bad input


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "train.csv"
    with pytest.raises(UserInputError, match="does not exist") as excinfo:
        _load(train_file=str(missing))
    assert str(missing) in str(excinfo.value)


def test_missing_validation_file_is_named(sentiment_files: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "dev.csv"
    with pytest.raises(UserInputError, match="does not exist") as excinfo:
        _load(train_file=str(sentiment_files["train"]), validation_file=str(missing))
    assert str(missing) in str(excinfo.value)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("text,label\na,b\n")
    with pytest.raises(UserInputError) as excinfo:
        _load(train_file=str(path))
    message = str(excinfo.value)
    assert "unsupported type '.txt'" in message
    assert str(path) in message
    assert ".csv, .tsv, .json, .jsonl, .parquet" in message


def test_validation_file_without_train_file(sentiment_files: dict[str, Path]) -> None:
    with pytest.raises(UserInputError, match="need a --train-file as well"):
        _load(validation_file=str(sentiment_files["validation"]))


def test_unknown_text_column_lists_the_columns(sentiment_files: dict[str, Path]) -> None:
    with pytest.raises(UserInputError) as excinfo:
        _load(train_file=str(sentiment_files["train"]), text_column="body")
    message = str(excinfo.value)
    assert "Column 'body' (--text-column) is not in" in message
    assert "its columns are: text, label." in message
    assert ROW_COLUMN not in message


def test_unknown_label_column_lists_the_columns(sentiment_files: dict[str, Path]) -> None:
    with pytest.raises(UserInputError, match=r"Column 'y' \(--label-column\) is not in .*its columns are: text, label"):
        _load(train_file=str(sentiment_files["train"]), label_column="y")


def test_column_missing_from_the_validation_file_only(sentiment_files: dict[str, Path], tmp_path: Path) -> None:
    validation = write_csv(tmp_path / "val.csv", [{"body": "a", "label": "positive"}])
    with pytest.raises(UserInputError) as excinfo:
        _load(train_file=str(sentiment_files["train"]), validation_file=str(validation))
    message = str(excinfo.value)
    assert f"Column 'text' (--text-column) is not in {validation}" in message
    assert "its columns are: body, label" in message


def test_no_default_text_or_label_column(tmp_path: Path) -> None:
    no_text = write_csv(tmp_path / "a.csv", [{"body": "x", "label": "a"}])
    with pytest.raises(UserInputError, match="No text column found .*its columns are body, label"):
        _load(train_file=str(no_text))
    no_label = write_csv(tmp_path / "b.csv", [{"text": "x", "category": "a"}])
    with pytest.raises(UserInputError, match="No label column found .*its columns are text, category"):
        _load(train_file=str(no_label))


def test_header_only_csv_is_a_user_input_error_naming_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(UserInputError) as excinfo:
        _load(train_file=str(empty))
    assert str(empty) in str(excinfo.value)


def test_header_only_csv_says_the_split_has_no_rows(sentiment_files: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"The validation data \(.*empty\.csv\) has no rows"):
        _load(train_file=str(sentiment_files["train"]), validation_file=str(empty))


def test_single_class_training_data_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"text": f"t {i}", "label": "spam"} for i in range(4)])
    with pytest.raises(UserInputError, match=r"single label value \('spam'\).*at least two classes"):
        _load(train_file=str(path), validation_file=str(path))


def test_validation_label_never_seen_in_train_is_named_with_its_row(
    sentiment_files: dict[str, Path], tmp_path: Path
) -> None:
    rows = [{"text": "a", "label": "positive"}, {"text": "b", "label": "negative"}, {"text": "c", "label": "neutral"}]
    validation = write_csv(tmp_path / "val.csv", rows)
    with pytest.raises(UserInputError) as excinfo:
        _load(train_file=str(sentiment_files["train"]), validation_file=str(validation))
    message = str(excinfo.value)
    assert str(validation) in message
    assert "labels never seen in the training data: 'neutral'" in message
    assert "(rows 3)" in message
    assert "(negative, positive)" in message


def _rows_with_problems() -> list[dict]:
    rows = sentiment_rows(5)  # 10 data rows, numbered 1..10 after the header
    rows[1]["text"] = ""  # row 2
    rows[3]["label"] = ""  # row 4
    rows[6]["text"] = "   "  # row 7: whitespace only
    return rows


def test_invalid_rows_are_counted_and_numbered(tmp_path: Path, sentiment_files: dict[str, Path]) -> None:
    train = write_csv(tmp_path / "bad.csv", _rows_with_problems())
    with pytest.raises(UserInputError) as excinfo:
        _load(train_file=str(train), validation_file=str(sentiment_files["validation"]))
    message = str(excinfo.value)
    assert f"The train data ({train}) has 3 invalid rows" in message
    assert "2 with an empty 'text' (rows 2, 7)" in message
    assert "1 with a missing 'label' (rows 4)" in message
    assert "--drop-invalid-rows" in message


def test_invalid_rows_in_the_validation_file(tmp_path: Path, sentiment_files: dict[str, Path]) -> None:
    validation = write_csv(tmp_path / "bad_val.csv", _rows_with_problems())
    with pytest.raises(UserInputError, match=r"The validation data \(.*bad_val\.csv\) has 3 invalid rows"):
        _load(train_file=str(sentiment_files["train"]), validation_file=str(validation))


def test_many_invalid_rows_show_the_first_five(tmp_path: Path) -> None:
    rows = sentiment_rows(6)
    for index in range(0, 12, 2):  # rows 1, 3, 5, 7, 9, 11
        rows[index]["text"] = ""
    path = write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(UserInputError, match=r"6 with an empty 'text' \(rows 1, 3, 5, 7, 9 and 1 more\)"):
        _load(train_file=str(path), validation_file=str(path))


def test_missing_integer_label_is_an_invalid_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(10)) + "t10,\n,1\n")
    with pytest.raises(UserInputError) as excinfo:
        _load(train_file=str(path), validation_file=str(path))
    message = str(excinfo.value)
    assert "has 2 invalid rows" in message
    assert "1 with an empty 'text' (rows 12)" in message
    assert "1 with a missing 'label' (rows 11)" in message


def test_minus_one_is_an_ordinary_label_in_a_users_file(tmp_path: Path) -> None:
    # -1/0/1 sentiment scales are common in users' files: -1 is a class there, not a missing label.
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{i % 3 - 1}\n" for i in range(9)))
    prepared = _load(train_file=str(path), validation_file=str(path))
    assert prepared.schema.names == ["-1", "0", "1"]
    assert prepared.splits["train"]["labels"][:3] == [0, 1, 2]


def test_empty_cell_beside_minus_one_is_the_missing_label(tmp_path: Path) -> None:
    # An empty cell makes pandas read the column as floats (-1.0): it must still be a class, the cell missing.
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{i % 3 - 1}\n" for i in range(9)) + "t9,\n")
    with pytest.raises(UserInputError, match=r"1 with a missing 'label' \(rows 10\)"):
        _load(train_file=str(path), validation_file=str(path))
    prepared = _load(train_file=str(path), validation_file=str(path), drop_invalid_rows=True)
    assert prepared.schema.names == ["-1", "0", "1"]


def test_drop_invalid_rows_drops_and_records_the_count(tmp_path: Path, sentiment_files: dict[str, Path]) -> None:
    train = write_csv(tmp_path / "bad.csv", _rows_with_problems())
    prepared = _load(train_file=str(train), validation_file=str(sentiment_files["validation"]), drop_invalid_rows=True)
    assert prepared.dropped_rows == {"train": 3}
    assert _rows(prepared) == [1, 3, 5, 6, 8, 9, 10]
    assert _sizes(prepared) == {"train": 7, "validation": 8}
    assert all(text.strip() for text in prepared.splits["train"]["text"])


def test_drop_invalid_rows_keeps_integer_labels_single_label(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(10)) + "t10,\n")
    prepared = _load(train_file=str(path), validation_file=str(path), drop_invalid_rows=True)
    assert prepared.dropped_rows == {"train": 1, "validation": 1}
    assert prepared.schema.task == "single_label"
    assert prepared.schema.names == ["0", "1"]
    assert prepared.splits["train"]["labels"] == [0, 1] * 5


def test_drop_invalid_rows_with_nothing_left(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"text": "", "label": "a"}, {"text": " ", "label": "b"}])
    with pytest.raises(UserInputError, match="has no valid rows left after dropping"):
        _load(train_file=str(path), drop_invalid_rows=True)


# ------------------------------------------------------------------------------------- tokenization


def test_tokenize_does_not_pad_and_keeps_only_model_columns(tmp_path: Path, tokenizer) -> None:
    rows = [
        {"text": "hi", "label": "a"},
        {"text": "a somewhat longer message about a parcel that never arrived", "label": "b"},
    ]
    path = write_csv(tmp_path / "t.csv", rows)
    encoded = tokenize(_load(train_file=str(path), validation_file=str(path)), tokenizer, None)
    train = encoded["train"]
    assert sorted(train.column_names) == ["attention_mask", "input_ids", "labels", "token_type_ids"]
    short, long = train["input_ids"]
    assert short == tokenizer("hi")["input_ids"]
    assert len(short) == 3  # [CLS] hi [SEP]: not padded
    assert len(long) > len(short)
    assert tokenizer.pad_token_id not in short + long
    assert train["labels"] == [0, 1]


def test_tokenize_truncates_to_max_length(tmp_path: Path, tokenizer) -> None:
    rows = [{"text": " ".join(["word"] * 300), "label": "a"}, {"text": "short one", "label": "b"}]
    path = write_csv(tmp_path / "t.csv", rows)
    prepared = _load(train_file=str(path), validation_file=str(path))
    encoded = tokenize(prepared, tokenizer, 16)
    assert [len(ids) for ids in encoded["train"]["input_ids"]] == [16, 4]
    assert encoded["train"]["input_ids"][0][-1] == tokenizer.sep_token_id
    assert [len(ids) for ids in tokenize(prepared, tokenizer, None)["train"]["input_ids"]] == [302, 4]


def test_tokenize_encodes_pairs_as_pairs(tmp_path: Path, tokenizer) -> None:
    rows = [{"sentence1": f"first {i}", "sentence2": f"second text {i}", "label": i % 2} for i in range(4)]
    path = write_csv(tmp_path / "pairs.csv", rows)
    encoded = tokenize(_load(train_file=str(path), validation_file=str(path)), tokenizer, None)
    first = encoded["train"][0]
    assert first["input_ids"] == tokenizer("first 0", "second text 0")["input_ids"]
    assert first["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert first["input_ids"].count(tokenizer.sep_token_id) == 2
    assert all(1 in types for types in encoded["train"]["token_type_ids"])
    assert "sentence1" not in encoded["train"].column_names


def test_resolve_max_length(tokenizer) -> None:
    assert tokenizer.model_max_length == 512
    assert resolve_max_length(tokenizer, None) == 512
    assert resolve_max_length(tokenizer, 128) == 128
    with pytest.raises(UserInputError, match="--max-length 600 exceeds the tokenizer's limit of 512 tokens"):
        resolve_max_length(tokenizer, 600)
    with pytest.raises(UserInputError, match="--max-length must be a positive number of tokens, not 0"):
        resolve_max_length(tokenizer, 0)


def test_resolve_max_length_caps_a_huge_tokenizer_limit_at_512(bundled_tokenizer_path: Path) -> None:
    huge = AutoTokenizer.from_pretrained(bundled_tokenizer_path, model_max_length=int(1e30))
    assert resolve_max_length(huge, None) == 512
    small = AutoTokenizer.from_pretrained(bundled_tokenizer_path, model_max_length=128)
    assert resolve_max_length(small, None) == 128
    with pytest.raises(UserInputError, match="limit of 128 tokens"):
        resolve_max_length(small, 256)


def test_column_values_reads_a_whole_column_in_row_order(tmp_path: Path) -> None:
    rows = [{"text": f"text {i}", "label": "ab"[i % 2]} for i in range(300)]
    data = _load(train_file=str(write_csv(tmp_path / "train.csv", rows)))
    train = data.splits["train"]
    assert column_values(train, ROW_COLUMN) == [train[i][ROW_COLUMN] for i in range(len(train))]
    assert column_values(train, "labels") == [train[i]["labels"] for i in range(len(train))]


def test_the_reload_check_reads_the_first_rows_of_validation(tmp_path: Path) -> None:
    rows = [{"text": f"text {i}", "label": "ab"[i % 2]} for i in range(RELOAD_CHECK_ROWS + 44)]
    path = str(write_csv(tmp_path / "data.csv", rows))
    texts, pairs, labels = _validation_inputs(_load(train_file=path, validation_file=path))
    assert texts == [f"text {i}" for i in range(RELOAD_CHECK_ROWS)] and pairs is None
    assert labels.tolist() == [i % 2 for i in range(RELOAD_CHECK_ROWS)]
