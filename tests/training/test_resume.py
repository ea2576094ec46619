"""Interrupted runs: SIGKILL mid-epoch then --resume ends where an uninterrupted run ends; SIGTERM saves and says how.

Real `nlp-transfer train` subprocesses on the tiny checkpoint: 48 training rows at batch 2 are 24 steps an
epoch, with a checkpoint every 5 steps, so the first checkpoints fall mid-epoch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer.cli.app import main
from nlp_transfer.errors import UserInputError
from nlp_transfer.outputs import METRICS_FILE, staging_path
from nlp_transfer.training.resume import (
    StopOnSignal,
    interrupted_message,
    is_resumable,
    latest_checkpoint,
    resolve_resume,
)

STEPS_PER_EPOCH = 24
SENTINEL = "hf_SENTINEL_resume_0123456789"
QUALITY_KEYS = ("loss", "accuracy", "macro_f1", "log_loss", "brier", "roc_auc")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("resume-data")
    return {
        "train": write_csv(folder / "train.csv", sentiment_rows(24)),
        "validation": write_csv(folder / "validation.csv", sentiment_rows(4)),
    }


def train_command(checkpoint: Path, data: dict[str, Path], output: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "nlp_transfer.cli", "train",
        "--model", str(checkpoint),
        "--train-file", str(data["train"]),
        "--validation-file", str(data["validation"]),
        "--output-dir", str(output),
        "--num-train-epochs", "3",
        "--per-device-train-batch-size", "2",
        "--learning-rate", "1e-3",
        "--eval-strategy", "steps", "--save-strategy", "steps", "--eval-steps", "5", "--save-steps", "5",
        "--seed", "3",
        "--disable-tqdm", "true",
        *extra,
    ]  # fmt: skip


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment())


def start_and_stop(command: list[str], staging: Path, signal_number: int) -> subprocess.CompletedProcess:
    """Start a run, and send `signal_number` once its first mid-epoch checkpoint is complete."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if any(is_resumable(staging / f"checkpoint-{step}") for step in (5, 10, 15, 20)):
            process.send_signal(signal_number)
            break
        time.sleep(0.01)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode != 0, f"the run finished before it could be stopped:\n{stderr[-3000:]}"
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def assert_no_sentinel(folder: Path, *texts: str) -> None:
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert files
    for path in files:
        assert SENTINEL.encode() not in path.read_bytes(), f"the token is in {path}"
    for text in texts:
        assert SENTINEL not in text


def quality(output: Path) -> dict[str, float]:
    record = json.loads((output / METRICS_FILE).read_text())
    return {key: record["eval"][key] for key in QUALITY_KEYS} | {"optimizer_steps": record["optimizer_steps"]}


@pytest.fixture(scope="module")
def uninterrupted(tiny_checkpoint: Path, data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """The output folder of an uninterrupted run per strategy, trained once for the module."""
    outputs: dict[str, Path] = {}

    def output_of(strategy: str) -> Path:
        if strategy not in outputs:
            output = tmp_path_factory.mktemp(f"uninterrupted-{strategy}") / "run"
            done = run(train_command(tiny_checkpoint, data, output, "--strategy", strategy))
            assert done.returncode == 0, done.stderr[-3000:]
            outputs[strategy] = output
        return outputs[strategy]

    return output_of


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(
    tiny_checkpoint: Path, data: dict[str, Path], uninterrupted, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    command = train_command(tiny_checkpoint, data, output, "--strategy", "full", "--hub-token", SENTINEL)
    killed = start_and_stop(command, staging_path(output), signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not output.exists()
    assert_no_sentinel(staging_path(output))  # the checkpoints a kill leaves behind hold no token
    kept = latest_checkpoint(staging_path(output))
    assert kept is not None and int(kept.name.split("-")[1]) % STEPS_PER_EPOCH != 0  # killed mid-epoch

    resumed = run([*command, "--resume"])

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {kept}" in resumed.stderr
    record = json.loads((output / METRICS_FILE).read_text())
    assert record["resumed_from_step"] >= int(kept.name.split("-")[1])
    assert quality(output) == pytest.approx(quality(uninterrupted("full")), rel=1e-9, abs=1e-12)
    assert not staging_path(output).exists()
    assert_no_sentinel(output, killed.stderr, resumed.stderr)
    assert not any(path.name.startswith("checkpoint-") for path in output.iterdir())


@pytest.mark.parametrize("strategy", ["full", "lora"])  # lora: Trainer reloads the adapter, not the model
def test_sigterm_saves_a_checkpoint_says_how_to_resume_and_resume_finishes_the_run(
    strategy: str, tiny_checkpoint: Path, data: dict[str, Path], uninterrupted, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    command = train_command(tiny_checkpoint, data, output, "--strategy", strategy)
    stopped = start_and_stop(command, staging_path(output), signal.SIGTERM)

    assert stopped.returncode == 128 + signal.SIGTERM
    assert "Stopped by SIGTERM at step" in stopped.stderr
    assert "Continue with the same command plus --resume." in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert not output.exists()  # nothing that looks finished
    step = int(stopped.stderr.split("Stopped by SIGTERM at step ")[1].split(";")[0])
    assert is_resumable(staging_path(output) / f"checkpoint-{step}")  # saved at the step it stopped on

    resumed = run([*command, "--resume"])

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((output / METRICS_FILE).read_text())["resumed_from_step"] == step
    assert quality(output) == pytest.approx(quality(uninterrupted(strategy)), rel=1e-9, abs=1e-12)


# ----------------------------------------------------------------------------- finding the checkpoint


def write_checkpoint(folder: Path, step: int, *, state: str | None = None, optimizer: bool = True) -> Path:
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    if optimizer:
        (checkpoint / "optimizer.pt").write_bytes(b"state")
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}) if state is None else state)
    return checkpoint


def test_latest_checkpoint_skips_and_removes_one_cut_off_while_written(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 5)
    complete = write_checkpoint(tmp_path, 10)
    torn = write_checkpoint(tmp_path, 15, state='{"global_st')
    (tmp_path / "runs").mkdir()  # TensorBoard logs and other folders are left alone

    assert latest_checkpoint(tmp_path) == complete
    assert not torn.exists()
    assert (tmp_path / "runs").is_dir()


def test_a_checkpoint_without_optimizer_state_is_not_resumable(tmp_path: Path) -> None:
    assert not is_resumable(write_checkpoint(tmp_path, 5, optimizer=False))
    assert not is_resumable(write_checkpoint(tmp_path, 6, state=json.dumps({"global_step": 5})))
    assert is_resumable(write_checkpoint(tmp_path, 7))


def test_resume_without_a_checkpoint_starts_from_the_beginning(tmp_path: Path, caplog) -> None:
    with caplog.at_level("WARNING"):
        assert resolve_resume(True, None, tmp_path / ".run.incomplete", save_only_model=False) is None
    assert "training from the start" in caplog.text


def test_resume_refuses_save_only_model_and_a_broken_explicit_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="--save-only-model leaves it out"):
        resolve_resume(True, None, tmp_path, save_only_model=True)
    broken = write_checkpoint(tmp_path / "elsewhere", 4, optimizer=False)
    with pytest.raises(UserInputError, match="is not a complete checkpoint"):
        resolve_resume(False, str(broken), tmp_path, save_only_model=False)


def test_an_explicit_checkpoint_in_the_staging_folder_is_kept(tmp_path: Path) -> None:
    staging = tmp_path / ".run.incomplete"
    inside = write_checkpoint(staging, 8)
    outside = write_checkpoint(tmp_path / "copy", 8)

    assert resolve_resume(False, str(inside), staging, save_only_model=False).in_staging
    assert not resolve_resume(False, str(outside), staging, save_only_model=False).in_staging


def test_the_stop_callback_saves_and_stops_only_when_asked(tmp_path: Path) -> None:
    from transformers import TrainerControl, TrainerState

    callback, control, state = StopOnSignal(), TrainerControl(), TrainerState(global_step=7)
    callback.on_step_end(None, state, control)
    assert not (control.should_save or control.should_training_stop)

    callback.requested = signal.SIGTERM
    callback.on_step_end(None, state, control)
    assert control.should_save and control.should_training_stop and callback.stopped_at == 7
    message = interrupted_message(callback, tmp_path / "checkpoint-7")
    assert message.startswith("Stopped by SIGTERM at step 7; the checkpoint is ")
    assert "before any checkpoint" in interrupted_message(callback, None)


def test_resuming_at_another_batch_size_is_refused(
    tiny_checkpoint: Path, data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Trainer would skip 5 batches of 2 where the checkpoint had seen 5 of 4, and go on without a word."""
    output = tmp_path / "run"
    write_checkpoint(staging_path(output), 5, state=json.dumps({"global_step": 5, "train_batch_size": 4}))
    command = train_command(tiny_checkpoint, data, output, "--resume")[3:]  # the arguments after `-m nlp_transfer.cli`

    assert main(command) == 2

    message = " ".join(capsys.readouterr().err.split())
    assert "checkpoint-5 was trained at batch 4 per device (trainer_state.json), this run would train at 2" in message
    assert "Resume with --per-device-train-batch-size 4" in message
    assert not output.exists() and is_resumable(staging_path(output) / "checkpoint-5")  # the checkpoint is kept
