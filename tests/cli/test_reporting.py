"""`--report-to tensorboard` reaches Trainer; a missing backend is one clear error, not Trainer's RuntimeError."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nlp_transfer.cli.app import main

FAST_FLAGS = ["--num-train-epochs", "1", "--learning-rate", "1e-3", "--disable-tqdm", "true"]


def test_report_to_tensorboard_writes_event_files_into_the_output_folder(
    tiny_checkpoint: Path, sentiment_files: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    out = tmp_path / "out"
    code = main(
        ["train", "--model", str(tiny_checkpoint), "--train-file", str(sentiment_files["train"])]
        + ["--output-dir", str(out), "--report-to", "tensorboard", *FAST_FLAGS]
    )
    assert code == 0
    assert list((out / "runs").rglob("events.out.tfevents.*"))


def test_missing_reporting_backend_is_a_clear_error(
    tiny_checkpoint: Path,
    sentiment_files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name in ("tensorboard", "tensorboardX") else real_find_spec(name, *args),
    )
    out = tmp_path / "out"
    code = main(
        ["train", "--model", str(tiny_checkpoint), "--train-file", str(sentiment_files["train"])]
        + ["--output-dir", str(out), "--report-to", "tensorboard", *FAST_FLAGS]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "--report-to tensorboard needs the tensorboard package: pip install tensorboard" in " ".join(err.split())
    assert "Traceback" not in err
    assert not out.exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
