"""The output folder: complete or absent, never half-written.

A run writes into a hidden staging folder beside the target (`.NAME.incomplete`). Only when every file
is written is it renamed into place (an atomic rename on one file system). A failed run removes its
staging folder; a killed one leaves only that hidden, clearly named folder, which the next run clears.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from nlp_transfer.errors import UserInputError

# The files of a finished output folder: every module names them through these constants.
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SHARDED_INDEX_FILE = "model.safetensors.index.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
METRICS_FILE = "metrics.json"
RUN_CONFIG_FILE = "run_config.json"
CARD_FILE = "README.md"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"
CALIBRATION_PNG = "calibration.png"
MERGED_FOLDER = "merged"
"""With --merge-lora: the LoRA-merged plain model, beside the adapter."""

STAGING_SUFFIX = ".incomplete"
# Trainer writes these into the model folder; they are either pickles that may hold a Hub token
# (training_args.bin) or intermediate state that does not belong in a finished classifier.
NOT_PUBLISHED = ("training_args.bin",)
CHECKPOINT_PREFIX = "checkpoint-"


def check_output_dir(output_dir: str | None, overwrite: bool, holds: str = "the trained classifier") -> Path:
    """The target folder, refused before any work when the run could not publish it there.

    Refused: missing from the options, a file, a symbolic link, a parent the run cannot write into (the
    staging folder is made beside the target), or non-empty without --overwrite-output-dir.
    """
    if not output_dir:
        raise UserInputError(f"--output-dir is required: the folder {holds} is written to.")
    path = Path(output_dir).expanduser()
    if path.is_symlink():
        raise UserInputError(
            f"--output-dir {path} is a symbolic link (to {os.readlink(path)}). The finished run is moved into place "
            "by renaming, which would replace the link, not fill its target: give the real folder's path, or a new "
            "folder."
        )
    if path.exists() and not path.is_dir():
        raise UserInputError(f"--output-dir {path} exists and is a file. Give a folder path.")
    _check_writable_parent(path)
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UserInputError(
            f"--output-dir {path} is not empty. Choose a new folder, or pass --overwrite-output-dir to replace "
            "it (it is replaced only once the new run has finished)."
        )
    return path


def _check_writable_parent(path: Path) -> None:
    """Refuse an --output-dir whose parent (or nearest existing ancestor) does not accept new files.

    Tested by creating and removing a probe file there: permission bits say nothing for root, a read-only
    file system or a pseudo file system such as /proc.
    """
    parent = _nearest_existing(path.absolute().parent)
    if not parent.is_dir():
        raise UserInputError(f"--output-dir {path}: {parent} is a file, not a folder. Give a folder path.")
    try:
        handle, probe = tempfile.mkstemp(prefix=".nlp-transfer-probe-", dir=parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise UserInputError(
            f"--output-dir {path} cannot be written: {parent} does not accept new files ({error.strerror or error}). "
            f"Choose a folder you can write to, or fix the permissions of {parent}."
        ) from None


def _nearest_existing(folder: Path) -> Path:
    """`folder`, or its closest ancestor that exists (the run creates the missing ones)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def staging_path(target: Path) -> Path:
    """Where `target` is staged: a hidden name beside it (for a run, the same for every process)."""
    return target.parent / f".{target.name}{STAGING_SUFFIX}"


def staging_dir(target: Path) -> Path:
    """A fresh, empty staging folder for `target` (a leftover of a killed run is cleared)."""
    staging = staging_path(target)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def remove_intermediates(folder: Path) -> None:
    """Drop Trainer checkpoints and files that must not ship with the classifier."""
    for child in folder.iterdir():
        if child.is_dir() and child.name.startswith(CHECKPOINT_PREFIX):
            shutil.rmtree(child)
        elif child.name in NOT_PUBLISHED:
            child.unlink()


def publish(staging: Path, target: Path) -> None:
    """Move the finished staging folder to `target`, replacing what was there only now."""
    previous = target.parent / f".{target.name}.previous"
    if previous.exists():
        shutil.rmtree(previous)
    if target.exists():
        target.rename(previous)
    staging.rename(target)
    if previous.exists():
        shutil.rmtree(previous)


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def write_text_whole(path: Path, text: str) -> None:
    """Write a file through its hidden staging name and rename it: the file is complete or absent."""
    partial = staging_path(path)
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
