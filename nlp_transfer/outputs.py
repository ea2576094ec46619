"""The output folder: complete or absent, never half-written.

A run writes into a hidden staging folder beside the target (`.NAME.incomplete`). Only when every file
is written is it renamed into place (an atomic rename on one file system). A failed run removes its
staging folder; a killed one leaves only that hidden, clearly named folder, which the next run clears.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
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
DISTILL_REPORT_FILE = "distill_report.json"
EXPORT_REPORT_FILE = "export_report.json"
POOLED_HEADS_FILE = "pooled_heads.py"
STATIC_CLASSIFIER_FILE = "static_classifier.py"
"""The code of a pooled head (modeling.pooled_heads) or a static student (modeling.static_classifier), copied by
save_pretrained: with it transformers alone (trust_remote_code=True) loads the folder."""
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
OWNER_FILE = ".nlp-transfer.json"
"""In every folder the package writes: which command wrote it and, for a folder written whole, its files."""
MAX_NAMED = 5
"""How many foreign files a refusal names."""


def check_output_dir(
    output_dir: str | None,
    overwrite: bool,
    holds: str = "the trained classifier",
    inputs: Mapping[str, str | Path | None] | None = None,
) -> Path:
    """The target folder, refused before any work when the run could not publish it there, or would destroy
    something it does not own by publishing there.

    Refused: missing from the options, a file, a symbolic link, a parent the run cannot write into (the
    staging folder is made beside the target), a folder that is or holds one of the run's `inputs` (option
    name -> path: data files, the model folder, the config file), and a non-empty folder unless
    --overwrite-output-dir is given and the folder is one the package wrote with nothing added since.
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
    here = Path.cwd().resolve()
    if path.resolve() == here or path.resolve() in here.parents or not path.resolve().name:
        raise UserInputError(
            f"--output-dir {output_dir} is the current folder or one above it: the run is staged beside its output "
            "folder and renamed into place, which cannot be done to the folder you are in. Name a folder inside "
            "it, e.g. --output-dir runs/mine."
        )
    refuse_inputs_inside(path, inputs or {})
    _check_writable_parent(path)
    _restore_interrupted_publish(path)
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise UserInputError(
                f"--output-dir {path} is not empty. Choose a new folder, or pass --overwrite-output-dir to replace "
                "it (it is replaced only once the new run has finished, and only if nlp-transfer wrote it)."
            )
        refuse_foreign_contents(path)
    return path


def _restore_interrupted_publish(target: Path) -> None:
    """A run killed between `publish`'s two renames left the old folder as `.NAME.previous` and no `NAME`: put it
    back, so that it is judged (and kept) like any existing folder rather than cleared as a leftover."""
    previous = target.parent / f".{target.name}.previous"
    if previous.is_dir() and not previous.is_symlink() and not target.exists():
        previous.rename(target)


def refuse_inputs_inside(folder: Path, inputs: Mapping[str, str | Path | None], part: str = "") -> None:
    """Refuse a folder that is, or is an ancestor of, one of the run's inputs: replacing it would delete them.

    `part` names the sub-folder of `folder` the command replaces (compare's cells/), when not the whole folder.
    """
    replaced = (folder / part if part else folder).expanduser().resolve()
    for option, value in inputs.items():
        if value is None or str(value) == "":
            continue
        candidate = Path(value).expanduser()
        if not candidate.exists():  # a Hub id, or a missing file that its own check reports
            continue
        resolved = candidate.resolve()
        if resolved == replaced or replaced in resolved.parents:
            raise UserInputError(
                f"--output-dir {folder} {'is' if resolved == replaced else 'holds'} {value} ({option}), an input of "
                f"this run: writing the output there would delete it. Choose an --output-dir outside the folders of "
                f"the run's inputs, e.g. {Path('runs') / folder.name}."
            )


def refuse_foreign_contents(folder: Path) -> None:
    """Refuse to replace `folder` unless the package wrote it, as a whole, and nothing was added since.

    The package's own folders carry `OWNER_FILE`, the list of every file it wrote there; anything not on
    that list is the user's (notes, data, a file copied in) and would be lost with the folder.
    """
    owner = read_owner(folder)
    if owner is None or not isinstance(owner.get("files"), list):
        what = (
            "was not written by nlp-transfer"
            if owner is None
            else f"is a folder of 'nlp-transfer {owner.get('command')}'"
        )
        raise UserInputError(
            f"--output-dir {folder} {what} (it holds {_listing(folder)}). --overwrite-output-dir replaces only a "
            f"folder written by the same kind of run (marked by its {OWNER_FILE}); nothing was deleted. Choose a new "
            "--output-dir, or move what you want to keep and delete the folder yourself."
        )
    written = {name for name in owner["files"] if isinstance(name, str)} | {OWNER_FILE}
    listed = _files_under(folder, limit=len(written) + MAX_NAMED)
    foreign = [name for name in listed if name not in written and not _os_metadata(name)]
    if foreign:
        shown = ", ".join(foreign[:MAX_NAMED]) + (", ..." if len(foreign) > MAX_NAMED else "")
        raise UserInputError(
            f"--output-dir {folder} holds files nlp-transfer did not write: {shown}. Replacing the folder would "
            "delete them; nothing was deleted. Move them out of the folder, or choose a new --output-dir."
        )


OS_METADATA = re.compile(r"(^|/)(\.DS_Store|\._[^/]*|Thumbs\.db|desktop\.ini)$")
"""Files a file manager drops into any folder it shows (macOS Finder, Windows Explorer): not the user's work."""


def _os_metadata(name: str) -> bool:
    return bool(OS_METADATA.search(name))


def read_owner(folder: Path) -> dict[str, Any] | None:
    """The package's record of what it wrote into `folder` (`OWNER_FILE`), or None for a folder it did not mark."""
    try:
        owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and owner.get("written_by") == "nlp-transfer" else None


def mark_owned(folder: Path, command: str, whole: bool = True) -> None:
    """Write `OWNER_FILE` into `folder`: the command, and with `whole` the list of every file now in it.

    A folder written whole (train, adapt, export) lists its files, so a later --overwrite-output-dir can tell
    them from files added since. A folder filled over time (a compare grid, a benchmark) is marked without a
    list: it is never replaced as a whole, only its own parts are rewritten.
    """
    files = sorted(_files_under(folder)) if whole else None
    owner = {"written_by": "nlp-transfer", "command": command, "files": files}
    (folder / OWNER_FILE).write_text(json.dumps(owner, indent=1) + "\n", encoding="utf-8")


def check_incremental_folder(
    folder: Path,
    command: str,
    inputs: Mapping[str, str | Path | None],
    allowed: tuple[Path, ...] = (),
    recognised: str | None = None,
) -> None:
    """A folder a command fills over time (compare, benchmark), checked before any work.

    Refused: a file or link, a folder that holds one of the run's `inputs`, and a non-empty folder that is
    not the command's (no `OWNER_FILE`, nor the `recognised` file an earlier version wrote), since the
    command writes its tables and runs there under fixed names. `allowed` files may sit in a new folder (a
    grid file kept beside its results).
    """
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UserInputError(f"--output-dir {folder} exists and is not a folder. Give a folder path.")
    refuse_inputs_inside(folder, inputs)
    _check_writable_parent(folder)
    if not folder.is_dir() or read_owner(folder) is not None or (recognised and (folder / recognised).exists()):
        return
    kept = {path.expanduser().resolve() for path in allowed}
    foreign = [name for name in _files_under(folder, MAX_NAMED + len(kept)) if (folder / name).resolve() not in kept]
    if foreign:
        raise UserInputError(
            f"--output-dir {folder} already holds files nlp-transfer did not write ({', '.join(foreign[:MAX_NAMED])}"
            f"{', ...' if len(foreign) > MAX_NAMED else ''}): '{command}' writes its tables and runs there and could "
            "overwrite them. Choose a new or empty --output-dir."
        )


def _files_under(folder: Path, limit: int | None = None) -> list[str]:
    """Relative POSIX paths of the files (and links) under `folder`, at most `limit` of them."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.append(Path(root, name).relative_to(folder).as_posix())
            if limit is not None and len(found) >= limit:
                return found
    return found


def _listing(folder: Path) -> str:
    names = sorted(child.name + ("/" if child.is_dir() else "") for child in folder.iterdir())
    return ", ".join(names[:MAX_NAMED]) + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


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


def publish(staging: Path, target: Path, command: str = "train", overwrite: bool = True) -> None:
    """Mark the finished staging folder as the package's and move it to `target`, replacing what was there
    only now, and only when that is still allowed: another run may have published there meanwhile (without
    --overwrite-output-dir nothing is replaced), or files may have been added to the old folder. Then the
    finished run is kept under a visible name beside the target, and the refusal says where."""
    mark_owned(staging, command)
    if target.is_dir() and any(target.iterdir()):
        try:
            if not overwrite:
                raise UserInputError(
                    f"--output-dir {target} was filled by another run while this one trained, and "
                    "--overwrite-output-dir was not given, so it is left as it is."
                )
            refuse_foreign_contents(target)
        except UserInputError as refusal:
            kept = target.parent / f"{target.name}.new-{time.strftime('%Y%m%d-%H%M%S')}"
            staging.rename(kept)
            raise UserInputError(f"{refusal} The finished run is kept in {kept}.") from None
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
