"""predict --file: a corpus streamed in chunks, each written as a part and joined at the end, resumable after a kill.

One tiny classifier is trained for the module; every run reads small CSV files except the kill test, which runs the
real console command in subprocesses (as tests/training/test_resume.py does for training).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import sentiment_rows, train_tiny_classifier, write_csv

from nlp_transfer import Classifier, CorpusOptions, load_classifier, predict_corpus
from nlp_transfer.cli.app import main
from nlp_transfer.errors import UserInputError
from nlp_transfer.inference import corpus_files
from nlp_transfer.inference.corpus_output import PartialOutput
from nlp_transfer.inference.records import SKIPPED, prediction_fields, prediction_record, skipped_record

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ("jsonl", "csv", "tsv", "parquet")
TEXTS = [
    "great product, works well",
    "terrible, broke in a day",
    "",
    "love it, excellent quality",
    'awful quality, "very" sad',
    "very happy with this\nsecond line of the same text",
    "   ",
    "bad purchase, do not buy",
    "superb and fast",
    "slow and useless\twith a tab",
    "café très bien ✓",
    "do not buy, terrible",
    "happy with it, great",
    "awful, useless",
    "works well, love it",
    "broke in a day, sad",
    "excellent quality, superb",
    "bad and slow",
    "very happy, great product",
    "terrible purchase",
    "love it",
    "useless",
    "superb",
]
"""23 rows (7 does not divide them), two empty texts, and quotes, commas, a newline, a tab and accents."""
EMPTY_ROWS = [3, 7]


def corpus_rows() -> list[dict[str, str]]:
    return [{"id": f"{i:03d}", "text": text, "date": f"2024-05-{i + 1:02d}"} for i, text in enumerate(TEXTS)]


@pytest.fixture(scope="module")
def trained(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny single-label folder trained long enough that its labels differ between texts (no temperature: sharper
    scores, so no label sits within float noise of the 0.5 boundary)."""
    root = tmp_path_factory.mktemp("corpus-model")
    options = ["--num-train-epochs", "8", "--learning-rate", "3e-3", "--per-device-train-batch-size", "8"]
    options += ["--seed", "0", "--calibration", "none", "--disable-tqdm", "true"]
    return train_tiny_classifier(tiny_checkpoint, root, *options)


@pytest.fixture(scope="module")
def classifier(trained: Path) -> Classifier:
    return load_classifier(trained, "cpu")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("corpus") / "tickets.csv", corpus_rows())


def predict_cli(model: Path, file: Path, *options: str) -> tuple[int, str, str]:
    """`nlp-transfer predict --file` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["predict", "--model", str(model), "--file", str(file), "--quiet", *options])
    return code, out.getvalue(), err.getvalue()


def refusal(err: str) -> str:
    """The one error paragraph on stderr, joined into one line (the CLI wraps it at 100 characters)."""
    assert "Traceback" not in err
    assert err.count("error: ") == 1, err
    return " ".join(err[err.index("error: ") :].split())


def summary_line(err: str) -> str:
    lines = [line for line in err.replace("\r", "\n").splitlines() if " rows: " in line or " rows written" in line]
    assert len(lines) == 1, err
    return lines[0]


def read_output(path: Path) -> list[dict[str, Any]]:
    """The output's rows as dicts; CSV/TSV cells as text, except `score` (a float, None when empty)."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))
        return [{**row, "score": float(row["score"]) if row["score"] else None} for row in rows]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def header(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return pq.read_schema(path).names
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))


def assert_same_rows(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    """Same fields in the same order, equal values; scores equal within 1e-5 (other batches, other last digits)."""
    assert len(ours) == len(theirs)
    for number, (a, b) in enumerate(zip(ours, theirs), start=1):
        assert list(a) == list(b), f"row {number}"
        for key in a:
            if key == "score" and a[key] is not None:
                assert a[key] == pytest.approx(b[key], abs=1e-5), f"row {number}"
            else:
                assert a[key] == b[key], f"row {number} {key}"


def is_skipped(row: dict[str, Any]) -> bool:
    return bool(row.get(SKIPPED))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hidden(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


# 1 + 2 + 5 (kept values, text not twice) + 6 (nothing hidden left) ---------------------------------------------------


@pytest.mark.parametrize("keep", ["id", "all"])
@pytest.mark.parametrize("form", FORMATS)
def test_every_chunk_size_gives_the_rows_of_an_in_memory_prediction(
    form: str, keep: str, trained: Path, classifier: Classifier, corpus: Path, tmp_path: Path
) -> None:
    outputs = {}
    for chunk_rows in (1, 7, 1000):
        output = tmp_path / f"chunks-{chunk_rows}.{form}"
        options = ["--output", str(output), "--keep-columns", keep, "--chunk-rows", str(chunk_rows)]
        code, _, err = predict_cli(trained, corpus, *options)
        assert code == 0, err
        outputs[chunk_rows] = output
    again = tmp_path / f"again.{form}"
    assert predict_cli(trained, corpus, "--output", str(again), "--keep-columns", keep, "--chunk-rows", "7")[0] == 0
    assert again.read_bytes() == outputs[7].read_bytes()  # the same chunks twice: the same bytes
    assert hidden(tmp_path) == []  # no partial folder, no half-joined file

    # id: the kept column, then the prediction's fields; all: `text` is the input's own column, not written twice
    fields = ["id", "text", *(["date"] if keep == "all" else []), "label", "score", SKIPPED]
    rows = {chunk_rows: read_output(path) for chunk_rows, path in outputs.items()}
    if form != "jsonl":
        assert header(outputs[1]) == fields
    else:  # JSON Lines: `skipped` only where a row was skipped, `score` only where it was predicted
        assert list(rows[1][0]) == fields[:-1]
        assert list(rows[1][2]) == [name for name in fields if name != "score"]
    assert_same_rows(rows[7], rows[1])
    assert_same_rows(rows[1000], rows[1])

    expected = corpus_rows()
    texts = [row["text"] for row in expected if row["text"].strip()]
    predictions = iter(classifier.predict(texts))
    for number, (row, source) in enumerate(zip(rows[1], expected, strict=True), start=1):
        assert row["id"] == source["id"]  # "007" stays "007": CSV input is read as text
        assert row["text"] == source["text"]
        if keep == "all":
            assert row["date"] == source["date"]
        if number in EMPTY_ROWS:
            assert row[SKIPPED] == "empty text"
            assert row["label"] in (None, "")  # JSON null, Parquet null, an empty CSV cell
            assert row.get("score") is None
            continue
        prediction = next(predictions)
        assert row["label"] == prediction["label"], f"row {number}"
        assert row["score"] == pytest.approx(prediction["score"], abs=1e-5)
        assert row.get(SKIPPED) in (None, "")
    assert next(predictions, None) is None
    assert rows[1][7]["id"] == "007"
    assert {row["label"] for row in rows[1] if not is_skipped(row)} == {"positive", "negative"}  # labels that differ


def test_all_scores_and_top_k_in_csv_are_json_cells_equal_across_chunk_sizes(
    trained: Path, classifier: Classifier, corpus: Path, tmp_path: Path
) -> None:
    texts = [text for text in TEXTS if text.strip()]
    expected = classifier.predict(texts)
    for option in (["--all-scores"], ["--top-k", "1"]):
        outputs = []
        for chunk_rows in ("1", "7"):
            output = tmp_path / f"{option[0][2:]}-{chunk_rows}.csv"
            code, _, err = predict_cli(trained, corpus, "--output", str(output), "--chunk-rows", chunk_rows, *option)
            assert code == 0, err
            outputs.append([row for row in read_output(output) if not row[SKIPPED]])
        for ours, theirs, prediction in zip(*outputs, expected, strict=True):
            if option == ["--all-scores"]:
                scores, other = json.loads(ours["scores"]), json.loads(theirs["scores"])
                assert list(scores) == list(other) == ["negative", "positive"]
                assert list(scores.values()) == pytest.approx(list(prediction["scores"].values()), abs=1e-5)
                assert list(other.values()) == pytest.approx(list(prediction["scores"].values()), abs=1e-5)
            else:
                top, other = json.loads(ours["top_k"]), json.loads(theirs["top_k"])
                assert [entry["label"] for entry in top] == [entry["label"] for entry in other]
                assert [entry["label"] for entry in top] == [prediction["label"]]
                assert top[0]["score"] == pytest.approx(prediction["score"], abs=1e-5)


def test_stdout_without_output_is_the_json_lines_file(trained: Path, corpus: Path, tmp_path: Path) -> None:
    code, out, err = predict_cli(trained, corpus, "--chunk-rows", "7")
    assert code == 0, err
    output = tmp_path / "file.jsonl"
    assert predict_cli(trained, corpus, "--chunk-rows", "7", "--output", str(output))[0] == 0
    assert out == output.read_text(encoding="utf-8")
    assert summary_line(err).startswith("23 rows: 21 predicted, 21 in ")
    with pytest.raises(UserInputError, match="--resume continues a file: give --output"):
        predict_corpus(trained, corpus, None, CorpusOptions(), resume=True, progress=False)


# 3: killed and resumed -------------------------------------------------------------------------------------------


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def predict_command(model: Path, file: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "nlp_transfer.cli", "predict",
        "--model", str(model), "--file", str(file), "--output", str(output),
        "--chunk-rows", "5", "--quiet", *extra,
    ]  # fmt: skip


def written_parts(folder: Path) -> int:
    return next(i for i in itertools.count() if not (folder / f"part-{i:06d}").is_file())


def test_sigkill_then_resume_equals_an_uninterrupted_run(trained: Path, tmp_path: Path) -> None:
    rows = [{"id": f"{i:05d}", "text": row["text"]} for i, row in enumerate(sentiment_rows(1500))]  # 3,000 rows
    file = write_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "out"
    out.mkdir()
    reference_output, output = out / "reference.jsonl", out / "predictions.jsonl"
    folder = out / ".predictions.jsonl.partial"
    command = predict_command(trained, file, output)
    reference = subprocess.Popen(
        predict_command(trained, file, reference_output), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment(),
    )  # fmt: skip
    killed = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and killed.poll() is None:
            if (folder / "part-000000").is_file():
                killed.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        _, killed_err = killed.communicate(timeout=240)
        _, reference_err = reference.communicate(timeout=300)
    finally:
        for process in (killed, reference):
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert killed.returncode == -signal.SIGKILL, f"the run finished before it could be killed:\n{killed_err[-3000:]}"
    assert reference.returncode == 0, reference_err[-3000:]
    assert not output.exists()
    parts = written_parts(folder)
    assert 1 <= parts < 600
    stamps = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}

    # The same command again, without --resume: refused, naming the folder and --resume.
    code, _, err = predict_cli(trained, file, "--output", str(output), "--chunk-rows", "5")
    assert code == 2
    message = refusal(err)
    assert f"{folder} holds the predictions of an interrupted run ({parts} chunks written)" in message
    assert "Add --resume to continue it, or delete that folder to start over." in message
    # --resume with another option, another model folder, or after the input changed: refused, naming what differs.
    code, _, err = predict_cli(trained, file, "--output", str(output), "--chunk-rows", "7", "--resume")
    assert code == 2
    assert f"--resume: {folder} was started by a different run (--chunk-rows: 5 then, 7 now)" in refusal(err)
    other_model = shutil.copytree(trained, tmp_path / "copy-of-model")
    code, _, err = predict_cli(other_model, file, "--output", str(output), "--chunk-rows", "5", "--resume")
    assert code == 2
    assert "was started by a different run (the model folder: " in refusal(err)
    original, stat = file.read_bytes(), file.stat()
    with open(file, "a", encoding="utf-8") as handle:
        handle.write("99999,one more text\n")
    code, _, err = predict_cli(trained, file, "--output", str(output), "--chunk-rows", "5", "--resume")
    assert code == 2
    assert "was started by a different run (the input file changed since)" in refusal(err)
    file.write_bytes(original)
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == stamps  # the refusals touched nothing

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300, env=environment())

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert digest(output) == digest(reference_output)
    earlier = parts * 5
    line = summary_line(resumed.stderr)
    # The interrupted run's rows are read past, not predicted again: this run predicted only the others.
    assert line.startswith(
        f"3,000 rows: 3,000 predicted ({earlier:,} rows were written by the interrupted run), {3000 - earlier:,} in "
    )
    assert line.endswith(f". Wrote {output}.")
    assert summary_line(reference_err).startswith("3,000 rows: 3,000 predicted, 3,000 in ")
    assert hidden(out) == []
    assert sorted(path.name for path in out.iterdir()) == ["predictions.jsonl", "reference.jsonl"]


@pytest.mark.parametrize("form", ["parquet", "csv"])
def test_an_interrupted_python_run_resumes_to_the_same_bytes_without_predicting_its_parts_again(
    form: str, trained: Path, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def options() -> CorpusOptions:
        return CorpusOptions(keep_columns=["id", "date"], chunk_rows=4)

    whole = predict_corpus(trained, corpus, tmp_path / f"whole.{form}", options(), progress=False)
    output = tmp_path / f"resumed.{form}"
    write_part = PartialOutput.write_part

    def stop_at_the_third_part(self: PartialOutput, index: int, data: bytes, summary: dict[str, Any]) -> None:
        if index == 2:
            raise KeyboardInterrupt
        write_part(self, index, data, summary)

    monkeypatch.setattr(PartialOutput, "write_part", stop_at_the_third_part)
    with pytest.raises(KeyboardInterrupt):
        predict_corpus(trained, corpus, output, options(), progress=False)
    monkeypatch.undo()
    folder = tmp_path / f".resumed.{form}.partial"
    assert sorted(path.name for path in folder.iterdir()) == [
        "part-000000", "part-000000.json", "part-000001", "part-000001.json", "state.json",
    ]  # fmt: skip
    assert not output.exists()

    predicted: list[str] = []
    predict = Classifier.predict

    def counting(self: Classifier, texts: list[str], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        predicted.extend(texts)
        return predict(self, texts, *args, **kwargs)

    monkeypatch.setattr(Classifier, "predict", counting)
    result = predict_corpus(trained, corpus, output, options(), resume=True, progress=False)

    assert output.read_bytes() == (tmp_path / f"whole.{form}").read_bytes()
    assert predicted == [text for text in TEXTS[8:] if text.strip()]  # rows 9-23: the first two parts are not redone
    assert (result.rows, result.resumed_rows, result.predicted, result.predicted_here) == (23, 8, 21, 15)
    assert result.skipped == whole.skipped == {"empty text": EMPTY_ROWS}  # the interrupted run's skips counted too
    assert hidden(tmp_path) == []


# 4: empty texts ---------------------------------------------------------------------------------------------------


def test_empty_texts_keep_their_rows_with_the_reason(trained: Path, tmp_path: Path) -> None:
    rows = [{"id": f"{i:03d}", "text": text} for i, text in enumerate(["good one", "", "bad one", "  \t ", "fine"], 1)]
    file = write_csv(tmp_path / "in.csv", rows)
    outputs = {form: tmp_path / f"out.{form}" for form in ("jsonl", "csv", "parquet")}
    for output in outputs.values():
        code, _, err = predict_cli(trained, file, "--output", str(output), "--keep-columns", "id", "--chunk-rows", "2")
        assert code == 0, err
        line = summary_line(err)
        assert line.startswith("5 rows: 3 predicted, 3 in ")
        assert line.endswith(f"; 2 skipped (empty text: rows 2, 4). Wrote {output}.")
    jsonl = read_output(outputs["jsonl"])
    assert jsonl[1] == {"id": "002", "text": "", "label": None, "skipped": "empty text"}
    assert jsonl[3] == {"id": "004", "text": "  \t ", "label": None, "skipped": "empty text"}
    assert [row["id"] for row in jsonl] == ["001", "002", "003", "004", "005"]
    assert all(SKIPPED not in jsonl[i] and jsonl[i]["label"] for i in (0, 2, 4))
    with open(outputs["csv"], newline="", encoding="utf-8") as handle:
        cells = list(csv.reader(handle))
    assert cells[2] == ["002", "", "", "", "empty text"]
    assert cells[4] == ["004", "  \t ", "", "", "empty text"]
    assert cells[1][4] == "" and cells[1][2] in ("positive", "negative")
    parquet = read_output(outputs["parquet"])
    assert parquet[1] == {"id": "002", "text": "", "label": None, "score": None, "skipped": "empty text"}
    assert parquet[0]["skipped"] is None and isinstance(parquet[0]["score"], float)

    result = predict_corpus(trained, file, tmp_path / "api.jsonl", CorpusOptions(chunk_rows=2), progress=False)
    assert (result.rows, result.predicted, result.skipped) == (5, 3, {"empty text": [2, 4]})
    assert result.output == str(tmp_path / "api.jsonl")


def test_on_empty_error_refuses_the_file_before_loading_the_model(tmp_path: Path) -> None:
    rows = [{"id": "1", "text": "good"}, {"id": "2", "text": "bad"}, {"id": "3", "text": " "}, {"id": "4", "text": "x"}]
    file = write_csv(tmp_path / "in.csv", rows)
    output = tmp_path / "out.jsonl"
    missing_model = tmp_path / "no-such-model"  # never loaded: the file is refused first
    code, _, err = predict_cli(missing_model, file, "--output", str(output), "--on-empty", "error", "--chunk-rows", "2")
    assert code == 2
    assert (
        f"{file} has an empty text (empty or only spaces) in column 'text' (row 3, counted from 1 after the header)"
        in refusal(err)
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv"]


def test_an_empty_second_text_is_skipped_or_refused(trained: Path, tmp_path: Path) -> None:
    rows = [
        {"sentence1": "great product", "sentence2": "works well"},
        {"sentence1": "awful quality", "sentence2": ""},
        {"sentence1": "", "sentence2": "also empty first"},
    ]
    file = write_csv(tmp_path / "pairs.csv", rows)
    output = tmp_path / "out.jsonl"
    code, _, err = predict_cli(trained, file, "--output", str(output))
    assert code == 0, err
    got = read_output(output)
    assert list(got[0]) == ["text", "text_pair", "label", "score"]
    assert got[1] == {"text": "awful quality", "text_pair": "", "label": None, "skipped": "empty second text"}
    assert got[2] == {"text": "", "text_pair": "also empty first", "label": None, "skipped": "empty text"}
    assert summary_line(err).endswith(
        f"; 1 skipped (empty second text: row 2); 1 skipped (empty text: row 3). Wrote {output}."
    )
    # The prediction is that of the pair, as Classifier.predict gives it.
    expected = load_classifier(trained, "cpu").predict(["great product"], ["works well"])[0]
    assert got[0]["label"] == expected["label"] and got[0]["score"] == pytest.approx(expected["score"], abs=1e-5)

    kept = tmp_path / "kept.jsonl"
    assert predict_cli(trained, file, "--output", str(kept), "--keep-columns", "all")[0] == 0
    assert list(read_output(kept)[0]) == ["sentence1", "sentence2", "label", "score"]  # neither text twice

    code, _, err = predict_cli(tmp_path / "no-model", file, "--output", str(output), "--on-empty", "error")
    assert code == 2
    assert f"{file} has an empty text (empty or only spaces) in column 'sentence1' (row 3," in refusal(err)


# 5: columns -------------------------------------------------------------------------------------------------------


def test_kept_columns_must_exist_and_must_not_take_a_prediction_fields_name(
    trained: Path, tmp_path: Path, corpus: Path
) -> None:
    output = tmp_path / "out.jsonl"
    code, _, err = predict_cli(tmp_path / "no-model", corpus, "--output", str(output), "--keep-columns", "id,nope")
    assert code == 2
    assert (
        f"Column 'nope' (--keep-columns) is not in {corpus}; its columns are: id, text, date. "
        "Name an existing column with --keep-columns." in refusal(err)
    )
    labelled = write_csv(
        tmp_path / "labelled.csv", [{"id": "1", "text": "good", "label": "positive", "score": "3", "skipped": "no"}]
    )
    clashes = (("label", "column label"), ("id,score", "column score"), ("all", "columns label, score, skipped"))
    for keep, names in clashes:
        code, _, err = predict_cli(trained, labelled, "--output", str(output), "--keep-columns", keep)
        assert code == 2
        assert f"--keep-columns: the {names} would share a name with the prediction's fields" in refusal(err)
    code, _, err = predict_cli(trained, corpus, "--output", str(output), "--chunk-rows", "0")
    assert code == 2
    assert "--chunk-rows must be at least 1, not 0." in refusal(err)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["labelled.csv"]  # no output, no partial folder


# 6: output --------------------------------------------------------------------------------------------------------


def test_a_read_error_after_some_chunks_leaves_nothing_behind(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"id": str(i), "text": f"text number {i}"} for i in range(1, 201)]
    file = write_csv(tmp_path / "in.csv", rows)
    with open(file, "a", encoding="utf-8") as handle:
        handle.write("201,too,many,fields\n")
    monkeypatch.setattr(corpus_files, "BLOCK_BYTES", 512)  # small blocks: the bad line is read after a few chunks
    parts: list[int] = []
    write_part = PartialOutput.write_part

    def recording(self: PartialOutput, index: int, data: bytes, summary: dict[str, Any]) -> None:
        parts.append(index)
        write_part(self, index, data, summary)

    monkeypatch.setattr(PartialOutput, "write_part", recording)
    output = tmp_path / "out" / "predictions.parquet"
    code, _, err = predict_cli(trained, file, "--output", str(output), "--chunk-rows", "10")
    assert code == 2
    assert (
        f"{file} has 1 row with more fields than its header's 2 (id, text): line 202 has 4 (line 1 is the header)."
        in refusal(err)
    )
    assert len(parts) >= 2  # the error came mid-file, after chunks were written
    assert list((tmp_path / "out").iterdir()) == []  # no partial folder, no output


def test_an_output_that_is_a_folder_is_refused(trained: Path, corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "predictions.jsonl"
    folder.mkdir()
    code, _, err = predict_cli(trained, corpus, "--output", str(folder))
    assert code == 2
    assert f"--output {folder} is a folder; give a file name, e.g. predictions.jsonl." in refusal(err)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["predictions.jsonl"]
    assert list(folder.iterdir()) == []


# 7: an exported ONNX folder ---------------------------------------------------------------------------------------


def test_an_exported_folder_predicts_the_file_like_the_pytorch_folder(
    trained: Path, corpus: Path, tmp_path: Path
) -> None:
    for module in ("onnxruntime", "onnx", "onnxscript"):
        pytest.importorskip(module, reason="export needs the onnx extra: pip install 'nlp-transfer[onnx]'")
    exported = tmp_path / "onnx"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["export", "--model", str(trained), "--output-dir", str(exported), "--no-latency"])
    assert code == 0, err.getvalue()
    assert (exported / "model.onnx").is_file()
    rows = {}
    for name, model in (("torch", trained), ("onnx", exported)):
        output = tmp_path / f"{name}.jsonl"
        code, _, err = predict_cli(model, corpus, "--output", str(output), "--keep-columns", "id", "--chunk-rows", "7")
        assert code == 0, err
        rows[name] = read_output(output)
    assert [row["id"] for row in rows["onnx"]] == [row["id"] for row in rows["torch"]]
    assert [row["label"] for row in rows["onnx"]] == [row["label"] for row in rows["torch"]]
    assert [row.get(SKIPPED) for row in rows["onnx"]] == [row.get(SKIPPED) for row in rows["torch"]]
    scores = [(row["score"], theirs["score"]) for row, theirs in zip(rows["onnx"], rows["torch"]) if "score" in row]
    assert len(scores) == len(TEXTS) - len(EMPTY_ROWS)
    np.testing.assert_allclose(*zip(*scores), atol=1e-4)


# 8: predict_iter --------------------------------------------------------------------------------------------------


def test_predict_iter_chunks_a_generator_lazily_like_predict(classifier: Classifier) -> None:
    texts = [row["text"] for row in sentiment_rows(5)]  # 10 texts
    pulled: list[str] = []

    def generate() -> Iterator[str]:
        for text in texts:
            pulled.append(text)
            yield text

    predictions = classifier.predict_iter(generate(), chunk_rows=3)
    first = next(predictions)
    assert len(pulled) == 3  # one chunk read, not the whole iterable
    ours = [first, *predictions]
    theirs = classifier.predict(texts)
    assert [p["label"] for p in ours] == [p["label"] for p in theirs]
    assert [p["score"] for p in ours] == pytest.approx([p["score"] for p in theirs], abs=1e-5)
    assert {p["label"] for p in theirs} == {"positive", "negative"}

    pairs = [f"second text {i}" for i in range(len(texts))]
    ours = list(classifier.predict_iter(((t, p) for t, p in zip(texts, pairs)), chunk_rows=4))
    theirs = classifier.predict(texts, pairs)
    assert [p["label"] for p in ours] == [p["label"] for p in theirs]
    assert [p["score"] for p in ours] == pytest.approx([p["score"] for p in theirs], abs=1e-5)
    assert [p["score"] for p in theirs] != pytest.approx([p["score"] for p in classifier.predict(texts)], abs=1e-6)

    with pytest.raises(UserInputError, match=r"predict_iter\(\) takes an iterable of texts"):
        next(classifier.predict_iter("one text"))
    with pytest.raises(UserInputError, match="chunk_rows must be at least 1, not 0"):
        next(classifier.predict_iter(texts, chunk_rows=0))


# 9: records -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hand_built(tiny_checkpoint: Path) -> dict[str, Classifier]:
    """Multi-label and regression classifiers from the tiny checkpoint (random heads: real prediction dicts, cheap),
    with conformal quantiles set by hand so that --coverage works."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from nlp_transfer.evaluation.conformal import conformal_quantiles

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    built = {}
    for task, problem, labels in (("multi_label", "multi_label_classification", 3), ("regression", "regression", 1)):
        model = AutoModelForSequenceClassification.from_pretrained(
            tiny_checkpoint, num_labels=labels, problem_type=problem
        ).eval()
        built[task] = Classifier.from_model(model, tokenizer)
        built[task].conformal = {"rows": 50, "quantiles": conformal_quantiles(np.linspace(0.0, 1.0, 50))}
        assert built[task].task == task
    return built


def test_prediction_fields_name_the_keys_of_real_records(
    classifier: Classifier, hand_built: dict[str, Classifier]
) -> None:
    assert classifier.conformal and classifier.task == "single_label"
    models = {"single_label": classifier, **hand_built}
    checked = 0
    for task, model in models.items():
        confidences = (None,) if task == "regression" else (None, 0.6)  # regression refuses --min-confidence
        for pair, top_k, all_scores, coverage, min_confidence in itertools.product(
            (None, "a second text"), (None, 2), (False, True), (None, 0.9), confidences
        ):
            prediction = model.predict(
                ["great product"], [pair] if pair else None, coverage=coverage, min_confidence=min_confidence
            )[0]
            record = prediction_record("great product", pair, prediction, top_k, all_scores)
            fields = prediction_fields(task, pair is not None, top_k, all_scores, coverage, min_confidence)
            assert list(record) == fields, (task, pair, top_k, all_scores, coverage, min_confidence)
            skipped = skipped_record("", pair, task, "empty text", pair is not None)
            assert [key for key in fields if key in skipped] + [SKIPPED] == list(skipped)
            checked += 1
    assert checked == 32 + 32 + 16
    assert prediction_fields("single_label", False, top_k=1) == ["text", "label", "score", "top_k"]
    assert prediction_fields("multi_label", True, coverage=0.9) == [
        "text", "text_pair", "labels", "scores", "label_set", "set_size", "coverage",
    ]  # fmt: skip
    assert prediction_fields("regression", False, coverage=0.9) == ["text", "label", "score", "interval", "coverage"]


@pytest.mark.parametrize("task", ["multi_label", "regression"])
def test_multi_label_and_regression_corpora_write_typed_parquet_and_csv(
    task: str, hand_built: dict[str, Classifier], tmp_path: Path
) -> None:
    model = hand_built[task]
    rows = [{"id": "007", "text": "good"}, {"id": "008", "text": ""}, {"id": "009", "text": "bad, really"}]
    file = write_csv(tmp_path / "in.csv", rows)
    fields = ["id", *prediction_fields(task, False, coverage=0.9), SKIPPED]
    label = "labels" if task == "multi_label" else "label"
    outputs = {}
    for form in ("parquet", "csv", "jsonl"):
        outputs[form] = tmp_path / f"out.{form}"
        options = CorpusOptions(keep_columns=["id"], chunk_rows=1, coverage=0.9)
        result = predict_corpus(model, file, outputs[form], options, progress=False)
        assert (result.rows, result.predicted, result.skipped) == (3, 2, {"empty text": [2]})
    table = pq.read_table(outputs["parquet"])
    assert table.schema.names == fields
    parquet = table.to_pylist()
    assert parquet[1][label] is None and parquet[1]["skipped"] == "empty text" and parquet[1]["coverage"] is None
    assert header(outputs["csv"]) == fields
    jsonl = read_output(outputs["jsonl"])
    assert jsonl[1] == {"id": "008", "text": "", label: None, "skipped": "empty text"}
    assert list(jsonl[0]) == fields[:-1]
    expected = model.predict(["good", "bad, really"], coverage=0.9)
    for row, prediction in zip([parquet[0], parquet[2]], expected):
        if task == "multi_label":
            assert row["labels"] == prediction["labels"]
            assert row["scores"] == pytest.approx(prediction["scores"], abs=1e-5)
        else:
            assert row["score"] == pytest.approx(prediction["score"], abs=1e-5)
            assert row["interval"] == pytest.approx(prediction["interval"], abs=1e-5)


def test_json_lines_whose_types_change_or_keys_come_late_are_read_and_kept_as_text(
    trained: Path, classifier: Classifier, tmp_path: Path
) -> None:
    """pyarrow's JSON reader types a column from its first block and refused such valid JSON Lines; each line is
    now parsed alone, a missing key is null, and a kept value that is not text is written as its JSON."""
    lines = ['{"id": 1, "text": null}', '{"id": "b", "text": 3}', "", '{"id": 3, "text": "fine", "tags": [1, 2]}']
    file = tmp_path / "mixed.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = predict_cli(trained, file, "--keep-columns", "id,tags", "--output", str(tmp_path / "out.jsonl"))
    assert code == 0, err
    rows = read_output(tmp_path / "out.jsonl")
    assert [row["id"] for row in rows] == ["1", "b", "3"]
    assert [row.get("tags") for row in rows] == [None, None, "[1, 2]"]
    assert rows[0]["skipped"] == "empty text" and rows[0]["label"] is None
    expected = classifier.predict(["3", "fine"])
    assert [row["label"] for row in rows[1:]] == [p["label"] for p in expected]
    assert "3 rows: 2 predicted" in summary_line(err)


def test_a_line_that_is_not_a_json_object_is_refused_by_its_number(trained: Path, tmp_path: Path) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_text('{"text": "fine"}\n[1, 2]\n', encoding="utf-8")
    code, _, err = predict_cli(trained, file, "--output", str(tmp_path / "out.jsonl"))
    assert code == 2
    assert f"Line 2 of {file} holds a JSON list, not an object" in refusal(err)
    file.write_text('{"text": "fine"}\n{"text": "unclosed\n', encoding="utf-8")
    code, _, err = predict_cli(trained, file, "--output", str(tmp_path / "out.jsonl"))
    assert code == 2
    assert f"Line 2 of {file} is not valid JSON (Invalid control character at column 19). Fix that line." in refusal(
        err
    )
    assert not (tmp_path / "out.jsonl").exists() and hidden(tmp_path) == []


def test_the_input_file_is_never_the_output(trained: Path, corpus: Path, tmp_path: Path) -> None:
    same = tmp_path / "same.csv"
    same.write_bytes(corpus.read_bytes())
    code, _, err = predict_cli(trained, same, "--output", str(same))
    assert code == 2
    assert f"--output {same} is the input file; write the predictions to another file." in refusal(err)
    assert same.read_bytes() == corpus.read_bytes()
