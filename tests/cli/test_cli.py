"""`nlp-transfer` on the command line: help, exit codes, one-paragraph errors, a tiny run, --config, predict.

`nlp_transfer.cli.app.main` runs in-process (its output captured); the installed console script and
`scripts/train.py` run once each as real processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer import load_classifier
from nlp_transfer.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
FAST_FLAGS = ["--num-train-epochs", "1", "--learning-rate", "1e-3", "--disable-tqdm", "true"]


def _error_message(err: str) -> str:
    """The one 'error: ...' paragraph on stderr (after any progress bars), as printed."""
    assert "Traceback" not in err
    assert err.count("error: ") == 1, err
    paragraph = err[err.index("error: ") :].rstrip("\n")
    assert "\n\n" not in paragraph, "one paragraph"
    return paragraph


def _squash(text: str) -> str:
    return "".join(text.split())


def _says(paragraph: str, text: str) -> bool:
    """Whether the wrapped paragraph says `text` (line breaks may fall at spaces or after hyphens)."""
    return _squash(text) in _squash(paragraph)


def _train_files(folder: Path, train_rows: list[dict], validation_rows: list[dict] | None = None) -> list[str]:
    args = ["--train-file", str(write_csv(folder / "train.csv", train_rows))]
    if validation_rows is not None:
        args += ["--validation-file", str(write_csv(folder / "validation.csv", validation_rows))]
    return args


def _assert_nothing_written(parent: Path, out: Path) -> None:
    assert not out.exists()
    assert sorted(p.name for p in parent.iterdir() if p.name.startswith(".")) == []


# ------------------------------------------------------------------------------------------- help


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  train +fine-tune a checkpoint", out, re.M)
    assert re.search(r"^  predict +predict labels and scores", out, re.M)
    assert "nlp-transfer train --help" in out
    assert main([]) == 0
    assert capsys.readouterr().out == out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'fit'" in err and "Traceback" not in err


def test_train_help_shows_the_groups_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nlp-transfer train --output-dir DIR")
    for group in (
        "model:",
        "data:",
        "strategy:",
        "training (every transformers TrainingArguments option is accepted):",
    ):
        assert re.search(rf"^{re.escape(group)}$", out, re.M), group
    for name in (
        "learning_rate",
        "label_separator",
        "text_pair_column",
        "early_stopping_patience",
        "overwrite_output_dir",
        "drop_invalid_rows",
        "output_dir",
    ):
        dashed = name.replace("_", "-")
        assert re.search(rf"^  --{name}\b.*, --{dashed}\b", out, re.M), name
    assert "--config FILE" in out


SHARED_OPTIONS = ("--model", "--file", "--text-column", "--text-pair-column", "--batch-size")


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_share_the_input_options(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: nlp-transfer {command} ")
    for option in SHARED_OPTIONS:
        assert re.search(rf"^  {option} [A-Z_]+\b", out, re.M), option
    assert _squash("Hub id of a pushed one") in _squash(out)
    assert re.search(r"Texts per forward pass\.\s+\(default:\s+32\)", out)

    from nlp_transfer.cli.evaluate import _evaluate_parser
    from nlp_transfer.cli.predict import _predict_parser

    parser = _evaluate_parser() if command == "evaluate" else _predict_parser()
    argv = ["--model", "m", "--file", "f.csv", "--text-column", "a", "--text-pair-column", "b", "--batch-size", "4"]
    args = parser.parse_args(argv)
    assert (args.model, args.file, args.text_column, args.text_pair_column, args.batch_size) == (
        "m",
        "f.csv",
        "a",
        "b",
        4,
    )
    assert parser.parse_args(["--model", "m", "--file", "f.csv"]).batch_size == 32


def test_predict_takes_texts_or_a_file_and_evaluate_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["predict", "--model", "m"], ["predict", "--model", "m", "--text", "t", "--file", "f.csv"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv
    assert "one of the arguments --text --file is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", "m"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --file" in capsys.readouterr().err


def test_console_script_and_train_script_help() -> None:
    console = Path(sys.executable).with_name("nlp-transfer")
    assert console.is_file()
    for command in ([str(console), "train", "--help"], [sys.executable, "scripts/train.py", "--help"]):
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: nlp-transfer train --output-dir DIR")
        assert "--early-stopping-patience" in done.stdout


# -------------------------------------------------------------------------------- bad input: exit 2


def test_missing_train_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    missing = tmp_path / "nowhere" / "train.csv"
    assert main(["train", "--train-file", str(missing), "--output-dir", str(out)]) == 2
    message = _error_message(capsys.readouterr().err)
    assert _squash(message).startswith(_squash(f"error: Data file {missing} does not exist."))
    _assert_nothing_written(tmp_path, out)


def test_error_paragraph_keeps_paths_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "customer-support-exports" / "train-set-2024-with-extra-long-hyphenated-name-parts.csv"
    assert len(str(missing)) > 100
    assert main(["train", "--train-file", str(missing), "--output-dir", str(tmp_path / "out")]) == 2
    message = _error_message(capsys.readouterr().err)
    assert f" {missing} " in " ".join(message.splitlines())


def test_unknown_text_column_lists_the_present_columns(
    tmp_path: Path, sentiment_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["train", "--train-file", str(sentiment_files["train"]), "--text-column", "body", "--output-dir", str(out)]
    assert main(argv) == 2
    message = _error_message(capsys.readouterr().err)
    assert _says(
        message, f"Column 'body' (--text-column) is not in {sentiment_files['train']}; its columns are: text, label."
    )
    _assert_nothing_written(tmp_path, out)


def test_empty_validation_file(
    tmp_path: Path, sentiment_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "data" / "empty.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = ["train", "--train-file", str(sentiment_files["train"]), "--validation-file", str(empty)]
    assert main([*argv, "--output-dir", str(out)]) == 2
    message = _error_message(capsys.readouterr().err)
    assert _says(message, f"error: The validation data ({empty}) has no rows.")
    _assert_nothing_written(tmp_path, out)


def test_validation_label_unseen_in_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    validation = sentiment_rows(2) + [{"text": "it is fine I guess", "label": "neutral"}]
    files = _train_files(tmp_path / "data", sentiment_rows(4), validation)
    out = tmp_path / "out"
    assert main(["train", *files, "--output-dir", str(out)]) == 2
    message = _error_message(capsys.readouterr().err)
    assert _says(
        message, "validation.csv has labels never seen in the training data: 'neutral' in column 'label' (rows 5)"
    )
    assert _says(message, "labels present in train (negative, positive)")
    _assert_nothing_written(tmp_path, out)


def _rows_with_invalid_entries() -> list[dict]:
    rows = sentiment_rows(6)
    rows[2]["text"] = ""  # row 3
    rows[5]["label"] = ""  # row 6
    rows[6]["text"] = "   "  # row 7: whitespace only is empty too
    return rows


def test_invalid_rows_are_counted_and_numbered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _train_files(tmp_path / "data", _rows_with_invalid_entries(), sentiment_rows(2))
    out = tmp_path / "out"
    assert main(["train", *files, "--output-dir", str(out)]) == 2
    message = _error_message(capsys.readouterr().err)
    assert _says(
        message,
        "has 3 invalid rows: 2 with an empty 'text' (rows 3, 7); 1 with a missing 'label' (rows 6). "
        "Rows are numbered from 1 after the header.",
    )
    assert _says(message, "--drop-invalid-rows")
    _assert_nothing_written(tmp_path, out)


def test_drop_invalid_rows_trains_without_them(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _train_files(tmp_path / "data", _rows_with_invalid_entries(), sentiment_rows(2))
    out = tmp_path / "out"
    argv = ["train", "--model", str(tiny_checkpoint), *files, "--output-dir", str(out), *FAST_FLAGS]
    assert main([*argv, "--drop-invalid-rows"]) == 0
    assert "Primary metric: accuracy" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["dropped_rows"] == {"train": 3}
    assert metrics["num_examples"] == {"train": 9, "validation": 4}


def test_missing_output_dir(
    tmp_path: Path,
    tiny_checkpoint: Path,
    sentiment_files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    files = ["--train-file", str(sentiment_files["train"]), "--validation-file", str(sentiment_files["validation"])]
    code = main(["train", "--model", str(tiny_checkpoint), *files, *FAST_FLAGS])
    captured = capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert code == 2
    assert _says(_error_message(captured.err), "error: --output-dir is required")


def test_non_empty_output_dir_is_refused(
    tmp_path: Path, sentiment_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["train", "--train-file", str(sentiment_files["train"]), "--output-dir", str(out)]) == 2
    message = _error_message(capsys.readouterr().err)
    assert _says(message, f"error: --output-dir {out} is not empty.")
    assert _says(message, "--overwrite-output-dir")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_unknown_strategy_lists_the_known_ones(
    tmp_path: Path, sentiment_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["train", "--train-file", str(sentiment_files["train"]), "--strategy", "lora2", "--output-dir", str(out)]
    with pytest.raises(SystemExit) as raised:  # argparse's usage error: the choices are part of --strategy
        main(argv)
    assert raised.value.code == 2
    message = _error_message(capsys.readouterr().err)
    expected = (
        "argument --strategy: invalid choice: 'lora2' (choose from 'full', 'freeze', 'lora', 'hybrid', 'scratch')"
    )
    assert _squash(expected) in _squash(message)
    _assert_nothing_written(tmp_path, out)


def test_unknown_option_in_config_file_suggests_the_right_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("learning_rat: 0.001\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["train", "--config", str(config), "--output-dir", str(out)]) == 2
    message = _error_message(capsys.readouterr().err)
    assert _says(message, f"Unknown option 'learning_rat' in {config}. Did you mean: learning_rate")
    _assert_nothing_written(tmp_path, out)


# ------------------------------------------------------------------------------------ successful runs


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """One `nlp-transfer train` run on the tiny model, its exit code and printed output."""
    root = tmp_path_factory.mktemp("cli-run")
    files = _train_files(root / "data", sentiment_rows(12), sentiment_rows(4))
    out = root / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["train", "--model", str(tiny_checkpoint), *files, "--output-dir", str(out), *FAST_FLAGS])
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "out": out}


def test_train_succeeds_and_prints_the_validation_metrics(cli_run: dict[str, Any]) -> None:
    assert cli_run["code"] == 0, cli_run["stderr"]
    out: Path = cli_run["out"]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    stdout = cli_run["stdout"]
    assert f"Primary metric: accuracy ({metrics['primary_metric_reason']})\n" in stdout
    # One row per metric, the primary first and starred, one column per split.
    assert re.search(r"^metric\s+validation$", stdout, re.MULTILINE)
    assert re.search(rf"^accuracy \*\s+{metrics['eval']['accuracy']:.4f}$", stdout, re.MULTILINE)
    assert re.search(rf"^macro_f1\s+{metrics['eval']['macro_f1']:.4f}$", stdout, re.MULTILINE)
    assert f"Saved to {out} (metrics in {out / 'metrics.json'})\n" in stdout
    assert "Test accuracy" not in stdout
    assert "Traceback" not in cli_run["stderr"]
    assert metrics["strategy_settings"]["learning_rate"] == 1e-3
    assert {"model.safetensors", "config.json", "metrics.json", "run_config.json"} <= {p.name for p in out.iterdir()}


def test_predict_prints_one_json_line_per_text(cli_run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out = str(cli_run["out"])
    assert main(["predict", "--model", out, "--text", "great product"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert set(record) == {"text", "label", "score"}
    assert record["text"] == "great product"
    assert record["label"] in ("negative", "positive")
    expected = load_classifier(out, device="cpu").predict(["great product"])[0]
    assert record["label"] == expected["label"]
    assert record["score"] == pytest.approx(expected["score"], abs=1e-6)

    assert main(["predict", "--model", out, "--text", "awful", "--text", "très bien"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == ["awful", "très bien"]


def test_predict_scores_top_k_file_and_output(
    cli_run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(cli_run["out"])
    expected = load_classifier(out, device="cpu").predict(["great product", "awful"])

    assert main(["predict", "--model", out, "--text", "great product", "--all-scores"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["scores"] == pytest.approx(expected[0]["scores"], abs=1e-6)
    assert record["score"] == pytest.approx(max(record["scores"].values()), abs=1e-12)

    assert main(["predict", "--model", out, "--text", "great product", "--top-k", "1"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [entry["label"] for entry in record["top_k"]] == [expected[0]["label"]]

    texts = write_csv(tmp_path / "texts.csv", [{"id": "a", "text": "great product"}, {"id": "b", "text": "awful"}])
    predictions = tmp_path / "preds.jsonl"
    assert main(["predict", "--model", out, "--file", str(texts), "--output", str(predictions)]) == 0
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["text"] for r in records] == ["great product", "awful"]
    assert [r["label"] for r in records] == [p["label"] for p in expected]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    bad = write_csv(tmp_path / "bad.csv", [{"body": "x"}])
    assert main(["predict", "--model", out, "--file", str(bad)]) == 2
    message = _error_message(capsys.readouterr().err)
    assert _says(message, "looked for 'text' or 'sentence'") and _says(message, "its columns are body.")


def test_predict_and_evaluate_read_a_latin1_file_with_encoding(
    cli_run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(cli_run["out"])
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("text,label\ntr\xe8s bien,positive\nd\xe9cevant,negative\n".encode("latin-1"))

    assert main(["predict", "--model", out, "--file", str(latin1)]) == 2
    assert _says(_error_message(capsys.readouterr().err), "--encoding latin-1")

    assert main(["predict", "--model", out, "--file", str(latin1), "--encoding", "latin-1"]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["très bien", "décevant"]
    assert main(["evaluate", "--model", out, "--file", str(latin1), "--encoding", "latin-1"]) == 0
    assert "2 examples from" in capsys.readouterr().out
    assert main(["evaluate", "--model", out, "--file", str(latin1), "--encoding", "klingon"]) == 2
    assert _says(_error_message(capsys.readouterr().err), "--encoding 'klingon' is not a text encoding")


def test_predict_on_a_folder_that_is_not_a_classifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(tmp_path), "--text", "hello"]) == 2
    message = _error_message(capsys.readouterr().err)
    assert _says(message, f"error: {tmp_path} is not a trained classifier folder (no config.json).")


def test_config_file_options_with_a_cli_override(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tiny_checkpoint}\n"
        f"train_file: {sentiment_files['train']}\n"
        f"validation-file: {sentiment_files['validation']}\n"
        "learning_rate: 1e-3\n"  # YAML reads this as a string; the option's type converts it
        "num_train_epochs: 3\n"
        "per_device_train_batch_size: 4\n"
        "disable_tqdm: true\n"
        "seed: 7\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert main(["train", "--config", str(config), "--num-train-epochs", "1", "--output-dir", str(out)]) == 0
    assert "Primary metric: accuracy" in capsys.readouterr().out
    resolved = json.loads((out / "run_config.json").read_text(encoding="utf-8"))
    assert resolved["training"]["num_train_epochs"] == 1  # the flag wins over the file's 3
    assert resolved["training"]["learning_rate"] == 1e-3
    assert resolved["training"]["per_device_train_batch_size"] == 4
    assert resolved["training"]["seed"] == 7
    assert resolved["training"]["disable_tqdm"] is True
    assert resolved["training"]["output_dir"] == str(out)
    assert resolved["model"]["model"] == str(tiny_checkpoint)
    assert resolved["data"]["validation_file"] == str(sentiment_files["validation"])
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["epochs"] == 1.0
    assert metrics["strategy_settings"]["learning_rate"] == 1e-3
