"""Surviving interruptions: find the checkpoint a killed run left, and stop cleanly on SIGTERM / Ctrl-C.

A run trains into its hidden staging folder (`.NAME.incomplete`, see `outputs`), and Trainer saves its
checkpoints there. A run killed outright (SIGKILL, a lost node) leaves that folder behind; `--resume`
continues from its latest complete checkpoint. A run asked to stop (SIGTERM from a scheduler, Ctrl-C)
finishes the optimizer step it is in, saves a checkpoint, and exits saying how to resume.

Trainer writes a checkpoint's files one after another and `trainer_state.json` last (older checkpoints are
rotated out only after it), so a checkpoint whose state file reads back whole holds everything resuming
needs; one cut by a kill is skipped and removed, which makes each checkpoint count all or nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from nlp_transfer.errors import UserInputError
from nlp_transfer.outputs import ADAPTER_WEIGHTS_FILE, CHECKPOINT_PREFIX, SHARDED_INDEX_FILE, WEIGHTS_FILE

logger = logging.getLogger(__name__)

TRAINER_STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
WEIGHT_FILES = (WEIGHTS_FILE, SHARDED_INDEX_FILE, ADAPTER_WEIGHTS_FILE)
STOP_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)"}


# ------------------------------------------------------------------------------------ finding a checkpoint


def checkpoint_step(folder: Path) -> int | None:
    """N of a `checkpoint-N` folder, None for any other name."""
    suffix = folder.name.removeprefix(CHECKPOINT_PREFIX)
    return int(suffix) if folder.name.startswith(CHECKPOINT_PREFIX) and suffix.isdigit() else None


def is_resumable(checkpoint: Path) -> bool:
    """A checkpoint a run can continue from: weights, optimizer state, and a whole trainer_state.json."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(state, dict)
        and state.get("global_step") == checkpoint_step(checkpoint)
        and (checkpoint / OPTIMIZER_FILE).is_file()
        and any((checkpoint / name).is_file() for name in WEIGHT_FILES)
    )


def latest_checkpoint(folder: Path) -> Path | None:
    """The resumable checkpoint with the most steps in `folder`; the others (cut by a kill, or without optimizer
    state) are removed, so that Trainer's rotation of checkpoints never counts them."""
    if not folder.is_dir():
        return None
    found = sorted(
        (step, child) for child in folder.iterdir() if child.is_dir() and (step := checkpoint_step(child)) is not None
    )
    latest = None
    for _, checkpoint in found:
        if is_resumable(checkpoint):
            latest = checkpoint
        else:
            logger.warning(
                "Removing %s: it cannot be resumed from (cut off while being written, or saved without optimizer "
                "state by --save-only-model).",
                checkpoint,
            )
            shutil.rmtree(checkpoint, ignore_errors=True)
    return latest


@dataclass(frozen=True)
class ResumePoint:
    """Where a run continues from: the checkpoint, and whether it lies in the staging folder (kept then)."""

    checkpoint: Path
    in_staging: bool


def resolve_resume(resume: bool, given: str | None, staging: Path, save_only_model: bool) -> ResumePoint | None:
    """The checkpoint `--resume` (latest in the staging folder) or `--resume-from-checkpoint PATH` names.

    `--resume` without a checkpoint starts from step 0 and says so, so that a job a scheduler re-queues can
    always carry the flag.
    """
    if not (resume or given):
        return None
    if save_only_model:
        raise UserInputError(
            "--resume needs checkpoints with optimizer state; --save-only-model leaves it out. Drop --save-only-model."
        )
    if given:
        checkpoint = Path(given).expanduser().resolve()
        if not is_resumable(checkpoint):
            raise UserInputError(
                f"--resume-from-checkpoint {given} is not a complete checkpoint (it needs {TRAINER_STATE_FILE}, "
                f"{OPTIMIZER_FILE} and the model weights). Give a checkpoint-N folder of an interrupted run, or "
                "use --resume to take the latest one of --output-dir."
            )
        return ResumePoint(checkpoint, staging.resolve() in checkpoint.parents)
    checkpoint = latest_checkpoint(staging)
    if checkpoint is None:
        logger.warning("--resume: no checkpoint of an interrupted run in %s; training from the start.", staging)
        return None
    return ResumePoint(checkpoint.resolve(), True)


def check_resume_batch(checkpoint: Path, batch_size: int) -> None:
    """Refuse to continue a checkpoint at another batch size per device than the one it was trained at.

    Trainer would resume without a word: it skips as many batches as the checkpoint's step count, which at
    another batch size lands elsewhere in the data, and rebuilds the learning-rate schedule for another number
    of steps. The batch can change unasked: the recipe chooses it from the number of processes and rows.
    """
    state = json.loads((checkpoint / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    saved = state.get("train_batch_size")
    if saved is not None and saved != batch_size:
        raise UserInputError(
            f"--resume: {checkpoint} was trained at batch {saved} per device ({TRAINER_STATE_FILE}), this run "
            f"would train at {batch_size}: it would not continue where it stopped (other batches, another "
            f"learning-rate schedule). Resume with --per-device-train-batch-size {saved} (and the same number of "
            "processes), or train from the start without --resume."
        )


# ------------------------------------------------------------------------------------------ stopping


class StopOnSignal(TrainerCallback):
    """Ends training after the current optimizer step with a checkpoint when `requested` is set."""

    def __init__(self) -> None:
        self.requested: int | None = None
        """The signal number that asked to stop, None while training should go on."""
        self.stopped_at: int | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested is not None:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control


@contextmanager
def stop_on_signals(callback: StopOnSignal) -> Iterator[None]:
    """SIGTERM and Ctrl-C ask `callback` to stop after the step; a second Ctrl-C stops at once.

    Only the main thread can take signals (a run inside a worker thread keeps the process's handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask_to_stop(number: int, frame: Any) -> None:
        if callback.requested is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        callback.requested = number
        logger.warning(
            "%s: saving a checkpoint after the current step, then stopping (Ctrl-C again stops at once).",
            STOP_SIGNALS.get(number, f"signal {number}"),
        )

    previous = {number: signal.signal(number, ask_to_stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def interrupted_message(callback: StopOnSignal, checkpoint: Path | None) -> str:
    """What the user reads after a stop on a signal: where the checkpoint is, how to go on."""
    name = STOP_SIGNALS.get(callback.requested or 0, f"signal {callback.requested}")
    when = f"at step {callback.stopped_at}" if callback.stopped_at is not None else "as training ended"
    if checkpoint is None:
        return f"Stopped by {name} {when}, before any checkpoint was saved; no output folder was written."
    return (
        f"Stopped by {name} {when}; the checkpoint is {checkpoint} (no finished output folder was written). "
        "Continue with the same command plus --resume."
    )
