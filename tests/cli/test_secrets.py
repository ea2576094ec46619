"""A Hub token, given by YAML or HF_TOKEN, reaches no file (model folder, TensorBoard events), no log, no output.

The flag and a kill are covered in test_resume.py (the checkpoints a SIGKILL leaves behind).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nlp_transfer.cli.app import main

SENTINEL = "hf_SENTINEL_secrets_0123456789"


def assert_nowhere(folder: Path, *texts: str) -> None:
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert any(path.name.startswith("events.out.tfevents") for path in files), "TensorBoard wrote no events"
    for path in files:
        if path.name == "run.yaml":  # the user's own config, which holds the token they gave
            continue
        assert SENTINEL.encode() not in path.read_bytes(), f"the token is in {path}"
    for text in texts:
        assert SENTINEL not in text


@pytest.mark.parametrize("given_by", ["yaml", "HF_TOKEN"])
def test_a_token_reaches_no_file_log_or_tensorboard_event(
    given_by: str,
    tmp_path: Path,
    tiny_checkpoint: Path,
    sentiment_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = tmp_path / "run.yaml"
    lines = [
        f"model: {tiny_checkpoint}",
        f"train_file: {sentiment_files['train']}",
        f"validation_file: {sentiment_files['validation']}",
        f"output_dir: {tmp_path / 'out'}",
        "num_train_epochs: 1",
        "learning_rate: 0.001",
        "report_to: tensorboard",
    ]
    if given_by == "yaml":
        lines.append(f"hub_token: {SENTINEL}")
    else:
        monkeypatch.setenv("HF_TOKEN", SENTINEL)
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with caplog.at_level(logging.DEBUG):
        assert main(["train", "--config", str(config), "--logging-steps", "1"]) == 0

    captured = capsys.readouterr()
    assert (tmp_path / "out" / "metrics.json").is_file()
    assert_nowhere(tmp_path, captured.out, captured.err, caplog.text)
