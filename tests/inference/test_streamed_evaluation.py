"""`nlp-transfer evaluate --file` streams its file: chunks of rows, each chunk's labels mapped and logits computed.

The metrics do not depend on the chunk size and equal those computed by hand from the folder's own logits; the
labels of every chunk are mapped by `read_labelled`'s rules, and its problems refused in its words, under the
file's row numbers (counted over the whole file, not per chunk).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import sentiment_rows, write_csv
from sklearn.metrics import accuracy_score

from nlp_transfer.cli.app import main
from nlp_transfer.data.labels import LabelSchema
from nlp_transfer.data.reading import read_labelled
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics import reported_suite
from nlp_transfer.inference.folder_evaluation import evaluate_folder, read_labels_streamed
from nlp_transfer.inference.predict import load_classifier

FAST_FLAGS = ["--num-train-epochs", "1", "--learning-rate", "1e-3", "--disable-tqdm", "true"]
BINARY = LabelSchema("single_label", ["negative", "positive"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    """One 1-epoch run of the tiny model on the word-labelled sentiment set."""
    root = tmp_path_factory.mktemp("streamed-evaluation-run")
    files = [write_csv(root / name, sentiment_rows(6)) for name in ("train.csv", "validation.csv")]
    out = root / "out"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(
            ["train", "--model", str(tiny_checkpoint), "--train-file", str(files[0]), "--validation-file"]
            + [str(files[1]), "--output-dir", str(out), *FAST_FLAGS]
        )
    assert code == 0, err.getvalue()
    return out


def _rows(count: int) -> list[dict]:
    return sentiment_rows(count)[: 2 * count - 1]  # an odd count: the last chunk of 3 is short


def _refusal(call) -> str:
    with pytest.raises(UserInputError) as caught:
        call()
    return str(caught.value)


def test_chunked_metrics_equal_a_whole_read_and_a_reference_by_hand(trained: Path, tmp_path: Path) -> None:
    rows = _rows(6)
    path = str(write_csv(tmp_path / "eval.csv", rows))
    chunked = evaluate_folder(trained, path, chunk_rows=3, bootstrap=50, seed=1)
    whole = evaluate_folder(trained, path, chunk_rows=10000, bootstrap=50, seed=1)

    classifier = load_classifier(trained)
    assert not classifier.thresholds, "argmax decides: sklearn's accuracy is the reference"
    logits = classifier.logits([r["text"] for r in rows])
    labels = np.asarray([classifier.labels.index(r["label"]) for r in rows])
    suite = reported_suite(classifier.task, classifier.labels, None, chunked.primary_metric, classifier.thresholds)
    reference = suite.evaluate(logits, labels)

    assert chunked.report.num_examples == whole.report.num_examples == len(rows)
    assert chunked.report.metrics["accuracy"] == whole.report.metrics["accuracy"]
    assert chunked.report.metrics["accuracy"] == accuracy_score(labels, logits.argmax(axis=1))
    assert set(chunked.report.metrics) == set(whole.report.metrics) == set(reference.metrics)
    for name, value in reference.metrics.items():
        assert chunked.report.metrics[name] == pytest.approx(value, abs=1e-6), name
        assert whole.report.metrics[name] == pytest.approx(value, abs=1e-6), name
    assert chunked.report.confusion_matrix == whole.report.confusion_matrix
    for name, interval in whole.intervals.items():
        assert chunked.intervals[name] == pytest.approx(interval, abs=1e-6), name
    assert chunked.abstention is not None and whole.abstention is not None
    for name, value in whole.abstention.items():  # rounded to 6 places: 1e-6 apart at most
        assert chunked.abstention[name] == pytest.approx(value, abs=1.5e-6), name


def test_an_unknown_label_in_a_later_chunk_is_refused_naming_its_file_row(trained: Path, tmp_path: Path) -> None:
    rows = _rows(6)
    rows[7]["label"] = "neutral"  # row 8 of the file, in its third chunk of 3 rows
    path = str(write_csv(tmp_path / "unknown.csv", rows))
    message = _refusal(lambda: evaluate_folder(trained, path, chunk_rows=3))
    assert "labels the model does not know: 'neutral'" in message
    assert "(rows 8)" in message
    assert "The model's labels are: negative, positive" in message
    assert message == _refusal(lambda: read_labelled(path, BINARY)), "the words of a whole read"


def test_unknown_labels_across_chunks_are_counted_as_in_a_whole_read(tmp_path: Path) -> None:
    rows = _rows(6)
    for index in (1, 4, 5, 7, 8, 9, 10):
        rows[index]["label"] = "neutral" if index % 2 else "mixed"
    path = str(write_csv(tmp_path / "many.csv", rows))
    message = _refusal(lambda: read_labels_streamed(path, BINARY, chunk_rows=2))
    assert "'mixed', 'neutral'" in message and "(rows 2, 5, 6, 8, 9 and 2 more)" in message
    assert message == _refusal(lambda: read_labelled(path, BINARY))


def test_an_empty_text_in_a_later_chunk_is_refused_as_in_a_whole_read(tmp_path: Path) -> None:
    rows = _rows(6)
    rows[9]["text"] = "  "
    path = str(write_csv(tmp_path / "empty.csv", rows))
    message = _refusal(lambda: read_labels_streamed(path, BINARY, chunk_rows=3))
    assert "an empty text (empty or only spaces) in column 'text' (row 10," in message
    assert message == _refusal(lambda: read_labelled(path, BINARY))


def test_integer_labels_in_a_csv_map_as_class_ids_as_before(trained: Path, tmp_path: Path) -> None:
    rows = _rows(6)
    by_name = str(write_csv(tmp_path / "names.csv", rows))
    ids = [{"text": r["text"], "label": BINARY.names.index(r["label"])} for r in rows]
    by_id = str(write_csv(tmp_path / "ids.csv", ids))
    streamed = read_labels_streamed(by_id, BINARY, chunk_rows=3).labels
    assert streamed.tolist() == read_labelled(by_id, BINARY).labels.tolist() == [r["label"] for r in ids]
    chunked, named = evaluate_folder(trained, by_id, chunk_rows=3), evaluate_folder(trained, by_name)
    assert chunked.report.metrics["accuracy"] == named.report.metrics["accuracy"]
    assert chunked.report.metrics == pytest.approx(named.report.metrics, abs=1e-6)
    assert chunked.report.confusion_matrix == named.report.confusion_matrix


@pytest.mark.parametrize(
    ("name", "content", "schema"),
    [
        ("floats.csv", "text,label\na,0.0\nb,1.0\nc,1\nd,negative\n", BINARY),  # 1.0 is class 1; '1' a name
        ("mixed.csv", "text,label\na,negative\nb,1\nc,positive\nd,0\n", BINARY),  # text column: '1' unknown
        ("missing.csv", "text,label\na,negative\nb,\nc,NA\nd,positive\ne,null\n", BINARY),
        ("numbers.csv", "text,label\na,1\nb,5\nc,0\n", LabelSchema("single_label", ["1", "2", "3", "4", "5"])),
        ("multi.csv", "text,labels\na,x;y\nb,\nc,z\nd,x;q\n", LabelSchema("multi_label", ["x", "y", "z"])),
        ("score.csv", "text,label\na,0.5\nb,x\nc,inf\n", LabelSchema("regression")),
        ("score_ok.tsv", "text\tlabel\na\t0.5\nb\t2\nc\t-1\n", LabelSchema("regression")),
        ("mixed.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": "positive"}\n', BINARY),
        ("array.json", json.dumps([{"text": "a", "label": 1}, {"text": "b", "label": "negative"}]), BINARY),
    ],
)
def test_streamed_labels_equal_a_whole_read(tmp_path: Path, name: str, content: str, schema: LabelSchema) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    def outcome(chunk_rows: int | None) -> tuple:
        try:
            if chunk_rows is None:
                labels = read_labelled(str(path), schema).labels
            else:
                labels = read_labels_streamed(str(path), schema, chunk_rows=chunk_rows).labels
        except UserInputError as error:
            return ("refused", str(error))
        return ("read", labels.tolist(), labels.dtype.str)

    whole = outcome(None)
    for rows in (1, 2, 4096):
        assert outcome(rows) == whole, rows
