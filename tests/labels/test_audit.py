"""`audit` and `nlp-transfer audit`: on a small, clearly separable three-class set (sports, cooking, finance) with three
planted label flips, the K-fold probe on the bundled MiniLM's vectors plus cleanlab flags exactly the flipped rows,
first, with the given and the right label; the table it writes, its row numbers (file rows, also after
--drop-invalid-rows) and summary; the refusals (training options with the probe, a class of one row, regression and
multi-label data, --folds 1, fold-run options after '--'); and one cheap `--method finetune` run on the tiny
checkpoint (every row scored, the working folder removed).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import COOKING, FINANCE, SPORTS, refusal, run_cli, sentiment_rows, write_csv

pytest.importorskip("cleanlab")

from nlp_transfer.config.data import DataArguments  # noqa: E402
from nlp_transfer.data.columns import ROW_COLUMN, column_values  # noqa: E402
from nlp_transfer.data.prepare import read_and_encode  # noqa: E402
from nlp_transfer.errors import UserInputError  # noqa: E402
from nlp_transfer.labels.audit import AuditOptions, audit  # noqa: E402
from nlp_transfer.labels.fold_training import check_train_args  # noqa: E402

FLIPS = {5: ("cooking", "finance"), 22: ("sports", "cooking"), 42: ("finance", "sports")}
"""Planted flips: file row -> (true label, given label)."""
TABLE_HEADER = [
    "rank",
    "row",
    "given_label",
    "suggested_label",
    "given_label_probability",
    "suggested_label_probability",
    "text",
]


def topic_rows() -> list[dict[str, str]]:
    """60 rows, the three topics interleaved (row 3i+1 sports, 3i+2 cooking, 3i+3 finance), three labels flipped."""
    rows = []
    for i in range(20):
        for label, texts in (("sports", SPORTS), ("cooking", COOKING), ("finance", FINANCE)):
            rows.append({"text": texts[i], "label": label})
    for row, (true, given) in FLIPS.items():
        assert rows[row - 1]["label"] == true
        rows[row - 1]["label"] = given
    return rows


@pytest.fixture(scope="module")
def train_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("audit") / "train.csv", topic_rows())


def run(*argv: str) -> tuple[int, str, str]:
    """`nlp-transfer audit` in this process: (exit code, stdout, stderr)."""
    return run_cli("audit", "--quiet", *argv)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


# -------------------------------------------------------------------------------------------- the probe


@pytest.fixture(scope="module")
def cli_audit(train_file: Path) -> dict:
    output = train_file.parent / "label_issues.csv"
    code, out, err = run("--train-file", str(train_file), "--output", str(output))
    assert code == 0, err
    return {"output": output, "stdout": out}


def test_the_probe_flags_the_flipped_rows_first_with_the_right_labels(cli_audit: dict) -> None:
    header, records = read_csv(cli_audit["output"])
    assert header == TABLE_HEADER
    assert {int(r["row"]) for r in records[:3]} == set(FLIPS)
    assert len(records) == 3  # a clean, separable set: nothing else
    rows = topic_rows()
    for rank, record in enumerate(records, start=1):
        row = int(record["row"])
        true, given = FLIPS[row]
        assert int(record["rank"]) == rank
        assert (record["given_label"], record["suggested_label"]) == (given, true)
        assert record["text"] == rows[row - 1]["text"]
        assert float(record["given_label_probability"]) < 0.5 < float(record["suggested_label_probability"])
    probabilities = [float(r["given_label_probability"]) for r in records]
    assert probabilities == sorted(probabilities)  # ranked by self-confidence, least first


def test_the_cli_prints_the_summary(cli_audit: dict) -> None:
    assert cli_audit["stdout"] == (
        "3 of 60 rows (5.0%) look mislabelled (probe, 5 folds; out-of-sample accuracy against the given labels "
        f"0.950); written to {cli_audit['output']}\n"
    )


def test_the_out_of_sample_probabilities_are_the_audit_result(train_file: Path) -> None:
    result = audit(DataArguments(train_file=str(train_file)), AuditOptions(progress=False))
    assert result.probabilities.shape == (60, 3)
    assert np.allclose(result.probabilities.sum(axis=1), 1.0)
    assert (result.rows, result.method, result.folds) == (60, "probe", 5)
    assert result.out_of_sample_accuracy == pytest.approx(57 / 60)
    assert set(result.table["row"]) == set(FLIPS)


def test_flagged_rows_are_file_rows_after_dropping_invalid_rows(tmp_path: Path) -> None:
    rows = [{"text": "", "label": "sports"}, *topic_rows(), {"text": "Beat the butter and sugar", "label": ""}]
    train = write_csv(tmp_path / "train.csv", rows)
    output = tmp_path / "issues.jsonl"
    code, _, err = run("--train-file", str(train), "--output", str(output), "--drop-invalid-rows")
    assert code == 0, err
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["row"] for r in records) == [row + 1 for row in sorted(FLIPS)]  # one empty row above them
    for record in records:
        assert record["text"] == rows[record["row"] - 1]["text"]


def test_the_audit_output_drops_its_rows_from_training(cli_audit: dict, train_file: Path) -> None:
    """audit -> train --drop-label-issues: the file it wrote is accepted and its rows leave the training split."""
    data = read_and_encode(DataArguments(train_file=str(train_file), drop_label_issues=str(cli_audit["output"])))
    rows = column_values(data.splits["train"], ROW_COLUMN)
    assert rows == [row for row in range(1, 61) if row not in FLIPS]
    assert data.dropped_rows["train (label issues)"] == 3


def test_fewer_folds_when_the_smallest_class_is_small(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [r for r in topic_rows()[:30] if r["label"] == "sports" or r["label"] == "finance"]
    rows += [{"text": text, "label": "cooking"} for text in COOKING[:3]]
    train = write_csv(tmp_path / "train.csv", rows)
    with caplog.at_level("WARNING", logger="nlp_transfer.labels.audit"):
        result = audit(DataArguments(train_file=str(train)), AuditOptions(progress=False))
    assert result.folds == 3
    assert "The smallest class has 3 rows: 3 folds instead of 5." in caplog.text
    assert result.summary().startswith(f"{len(result.table)} of {len(rows)} rows (")
    assert "(probe, 3 folds; " in result.summary()


# --------------------------------------------------------------------------------------------- refusals


def test_training_options_with_the_probe_are_refused(train_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "issues.csv"
    code, _, err = run("--train-file", str(train_file), "--output", str(output), "--", "--num-train-epochs", "1")
    assert code == 2
    assert refusal(err) == (
        "Training options after '--' (--num-train-epochs 1) are for --method finetune; the probe takes none."
    )
    assert not output.exists()


def test_a_class_of_one_row_is_refused_naming_it(tmp_path: Path) -> None:
    weather = {"text": "Sunny spells and a light breeze", "label": "weather"}
    train = write_csv(tmp_path / "train.csv", [*topic_rows(), weather])
    code, _, err = run("--train-file", str(train), "--output", str(tmp_path / "issues.csv"))
    assert code == 2
    assert refusal(err) == (
        f"Classes 'weather' of {train} have fewer than 2 rows: a row can only be judged by a model that saw other "
        "rows of its class. Label more rows of them, or leave them out."
    )


def test_regression_data_is_refused(tmp_path: Path) -> None:
    rows = [{"text": r["text"], "label": 0.25 if r["label"] == "positive" else 0.75} for r in sentiment_rows(6)]
    train = write_csv(tmp_path / "scores.csv", rows)
    code, _, err = run("--train-file", str(train), "--output", str(tmp_path / "issues.csv"))
    assert code == 2
    assert refusal(err) == (
        f"audit looks for wrong class labels; {train} holds a regression task. Multi-label and regression data are "
        "not audited yet."
    )


def test_multi_label_data_is_refused(tmp_path: Path) -> None:
    train = tmp_path / "tags.jsonl"
    records = [{"text": r["text"], "labels": [r["label"], "review"]} for r in sentiment_rows(6)]
    train.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    code, _, err = run("--train-file", str(train), "--output", str(tmp_path / "issues.csv"))
    assert code == 2
    assert refusal(err).startswith(f"audit looks for wrong class labels; {train} holds a multi_label task.")


@pytest.mark.parametrize("folds", ["1", "0"])
def test_fewer_than_two_folds_are_refused(train_file: Path, tmp_path: Path, folds: str) -> None:
    code, _, err = run("--train-file", str(train_file), "--output", str(tmp_path / "issues.csv"), "--folds", folds)
    assert code == 2
    assert refusal(err) == f"--folds must be at least 2 (each row is scored by a model of the others), not {folds}."


def test_output_over_the_training_file_is_refused(train_file: Path) -> None:
    before = train_file.read_bytes()
    code, _, err = run("--train-file", str(train_file), "--output", str(train_file))
    assert code == 2
    assert refusal(err) == f"--output {train_file} is one of the input files ({train_file}); give another name."
    assert train_file.read_bytes() == before


def test_without_cleanlab_the_audit_names_the_install(train_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cleanlab.filter", None)  # import cleanlab.filter raises ImportError
    with pytest.raises(UserInputError) as refused:
        audit(DataArguments(train_file=str(train_file)), AuditOptions(progress=False))
    assert str(refused.value) == (
        "audit uses cleanlab's confident learning, which is not installed: pip install 'nlp-transfer[labels]'  "
        "(or: pip install cleanlab)"
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--train-file", "x"], "--train-file"),
        (["--learning-rate", "1e-4", "--output-dir=runs/x"], "--output-dir"),
        (["--text-column", "body", "--label-column", "y"], "--text-column, --label-column"),
    ],
)
def test_fold_run_options_after_the_separator_are_refused(args: list[str], named: str) -> None:
    with pytest.raises(UserInputError) as refused:
        check_train_args(args)
    assert str(refused.value) == (
        f"{named} after '--' would change what each fold trains on or where it goes; audit sets them for every fold. "
        "Give the training file and columns as audit's own options."
    )


def test_training_options_that_the_folds_take_are_accepted() -> None:
    check_train_args(["--strategy", "lora", "--num-train-epochs", "2", "--learning-rate=1e-4"])


def test_finetune_with_a_fold_run_option_is_refused_on_the_cli(train_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "issues.csv"
    code, _, err = run(
        "--train-file", str(train_file), "--output", str(output), "--method", "finetune", "--",
        "--train-file", str(train_file),
    )  # fmt: skip
    assert code == 2
    assert refusal(err).startswith("--train-file after '--' would change what each fold trains on")
    assert not output.exists()


def test_a_bad_output_is_refused_before_any_text_is_embedded(
    train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_encoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder was loaded before --output was checked")

    monkeypatch.setattr("nlp_transfer.labels.audit.Encoder", no_encoder)
    code, _, err = run("--train-file", str(train_file), "--output", str(tmp_path / "issues.txt"))
    assert code == 2
    assert refusal(err) == f"--output {tmp_path / 'issues.txt'}: give a file ending in one of .csv, .tsv, .jsonl."


# ----------------------------------------------------------------------------------------- --method finetune


def test_finetune_scores_every_row_and_removes_its_work_folder(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = write_csv(tmp_path / "data" / "train.csv", sentiment_rows(6))
    made: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def recorded_mkdtemp(*args: object, **kwargs: object) -> str:
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recorded_mkdtemp)
    options = AuditOptions(
        method="finetune",
        folds=2,
        progress=False,
        train_args=["--model", str(tiny_checkpoint), "--max-steps", "2", "--calibration", "none"],
    )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = audit(DataArguments(train_file=str(train)), options)
    assert result.probabilities.shape == (12, 2)
    assert np.all(result.probabilities > 0)
    assert np.allclose(result.probabilities.sum(axis=1), 1.0)
    assert (result.method, result.folds, result.rows) == ("finetune", 2, 12)
    work = [Path(path) for path in made if Path(path).name.startswith("nlp-transfer-audit-")]
    assert len(work) == 1
    assert not work[0].exists()
