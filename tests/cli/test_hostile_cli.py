"""Findings of the hostile-input run that live in the CLI and the commands: options that crashed deep inside a
library, an adapt measurement that came out NaN, the load report's table, and start-up time.

Start-up is checked by what a command imports, not by a stopwatch: a `--help` or an argument error that does not
import torch, transformers or datasets answers in a fraction of a second on any machine (BENCHMARKS.md has the
times).
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer.cli import parser_cache
from nlp_transfer.cli.adapt import _adapt_parser
from nlp_transfer.cli.app import main
from nlp_transfer.cli.benchmark import _benchmark_parser
from nlp_transfer.cli.train import _train_parser
from nlp_transfer.training import adapt as adapt_module

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "datasets", "peft", "evaluate")


def _error(err: str) -> str:
    assert "Traceback" not in err
    assert err.count("error: ") == 1, err
    return " ".join(err[err.index("error: ") :].split())


# ------------------------------------------------------------------------------ options that crashed


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--per-device-train-batch-size", "--per-device-train-batch-size must be at least 1, not 0: leave it out"),
        ("--gradient-accumulation-steps", "--gradient-accumulation-steps must be at least 1, not 0."),
        ("--per-device-eval-batch-size", "--per-device-eval-batch-size must be at least 1, not 0."),
    ],
)
def test_a_zero_count_is_refused_before_any_work(
    option: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--output-dir", str(tmp_path / "out"), option, "0"]) == 2
    assert message in _error(capsys.readouterr().err)
    assert sorted(tmp_path.iterdir()) == []


def test_adapt_on_two_texts_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = tmp_path / "two.txt"
    texts.write_text("first note\nsecond note\n", encoding="utf-8")
    assert main(["adapt", "--text-file", str(texts), "--output-dir", str(tmp_path / "out")]) == 2
    message = _error(capsys.readouterr().err)
    assert f"Text file {texts} has 2 distinct non-empty texts; adapting needs at least 10" in message
    assert "at least 3 held out to measure the masked-LM loss" in message
    assert not (tmp_path / "out").exists()


def test_an_unmeasurable_held_out_loss_is_recorded_as_undefined_not_nan() -> None:
    class NoMaskedToken:
        def evaluate(self, metric_key_prefix: str) -> dict[str, float]:
            return {f"{metric_key_prefix}_loss": math.nan}

    figures = adapt_module._masked_lm_figures(NoMaskedToken(), seed=0)
    assert figures == {"loss": None, "perplexity": None, "reason": adapt_module.UNMEASURED}
    assert adapt_module._figures_text(figures).startswith("undefined (no token of the held-out texts was masked")


# ------------------------------------------------------------------------------------ the load report


def test_training_says_the_new_head_in_one_line_and_keeps_the_table_for_verbose(
    tmp_path: Path, tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train = write_csv(tmp_path / "train.csv", sentiment_rows())
    argv = ["train", "--model", str(tiny_checkpoint), "--train-file", str(train), "--max-steps", "1"]
    argv += ["--disable-tqdm", "true", "--output-dir"]
    with caplog.at_level(logging.INFO, logger="nlp_transfer"):
        assert main([*argv, str(tmp_path / "quiet")]) == 0
    assert "LOAD REPORT" not in caplog.text
    assert "MISSING" not in caplog.text
    assert "New classification head: 2 tensors initialised (classifier.bias, classifier.weight)" in caplog.text
    caplog.clear()
    try:
        assert main([*argv, str(tmp_path / "verbose"), "--verbose"]) == 0
    finally:
        logging.getLogger("nlp_transfer").setLevel(logging.INFO)
    assert "LOAD REPORT" in caplog.text


# ------------------------------------------------------------------------------------------ start-up

PROBE = textwrap.dedent(
    """
    import sys
    import nlp_transfer_cli
    sys.argv = ["nlp-transfer", *sys.argv[1:]]
    try:
        code = nlp_transfer_cli.main()
    except SystemExit as stop:
        code = stop.code
    heavy = [name for name in {heavy!r} if name in sys.modules]
    print("PROBE", code, ",".join(heavy) or "-", file=sys.stderr)
    """
).format(heavy=HEAVY)


def _probe(argv: list[str], cache: Path) -> tuple[int, str, str]:
    """Run the console script's entry in a fresh interpreter: exit code, heavy modules imported, stderr."""
    env = {**os.environ, parser_cache.CACHE_ENV: str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    line = next(line for line in done.stderr.splitlines() if line.startswith("PROBE"))
    _, code, heavy = line.split(" ")
    return int(code), heavy, done.stderr


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["train", "--help"], 0),
        (["train", "--bogus"], 2),
        (["train", "--num-train-epochs", "many"], 2),
        (["adapt", "--help"], 0),
        (["benchmark", "--levers", "--bogus"], 2),
        (["evaluate", "--help"], 0),
        (["predict", "--bogus"], 2),
        (["push", "--help"], 0),
        (["compare", "--help"], 0),
        (["export", "--help"], 0),
    ],
)
def test_help_and_argument_errors_import_no_heavy_library(argv: list[str], code: int, tmp_path: Path) -> None:
    _probe(argv, tmp_path)  # the first call may build and cache a parser
    assert _probe(argv, tmp_path)[:2] == (code, "-")


def test_a_real_command_still_imports_what_it_needs(tmp_path: Path) -> None:
    code, heavy, err = _probe(
        ["train", "--output-dir", str(tmp_path / "out"), "--per-device-train-batch-size", "0"], tmp_path
    )
    assert code == 2 and "torch" in heavy and "must be at least 1" in err


@pytest.mark.parametrize(
    ("command", "build"), [("train", _train_parser), ("adapt", _adapt_parser), ("benchmark", _benchmark_parser)]
)
def test_the_cached_parser_answers_as_the_real_one(
    command: str, build, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    real = build()
    fast = parser_cache.rebuild(parser_cache.describe(real))
    for parser in (real, fast):
        with pytest.raises(SystemExit) as stop:
            parser.parse_args(["--help"])
        assert stop.value.code == 0
    real_help, fast_help = capsys.readouterr().out.split("usage:", 2)[1:]
    assert fast_help == real_help
    refused = [["--bogus"], ["--seed", "x"], ["--model"]]
    refused += {
        "train": [["--strategy", "nope"], ["--bf16", "perhaps"], ["--num-train-epochs", "many"]],
        "adapt": [["--mlm-probability", "high"]],
        "benchmark": [["--architecture", "gpt"], ["--max-train-samples", "1.5"]],
    }[command]
    for argv in refused:
        answers = []
        for parser in (real, fast):
            with pytest.raises(SystemExit) as stop:
                parser.parse_args(argv)
            answers.append((stop.value.code, capsys.readouterr().err))
        assert answers[0] == answers[1], argv
        assert answers[0][0] == 2
    accepted = {
        "train": [["--output-dir", "o", "--bf16", "--strategy", "lora", "--eval-file", "a=x.csv", "b=y.csv"]],
        "adapt": [["--text-file", "t.txt", "--output-dir", "o", "--num-train-epochs", "2", "--fp16", "false"]],
        "benchmark": [["--output-dir", "o", "--levers", "--architecture", "bert-base", "--seed", "3"]],
    }[command]
    for argv in accepted:
        real.parse_args(argv)
        fast.parse_args(argv)
