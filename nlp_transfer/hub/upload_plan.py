"""What a push uploads: the allow-list, the plan of a folder's files and the paths left local, and `--dry-run`'s table.

Decided locally, before any token or network use: which files of a run folder go up (by name), their sizes,
what stays in the folder and why, whether the folder is a finished classifier that can be loaded, and the
content each file is sent as (the card naming the repository, the records' public copy).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from nlp_transfer.errors import UserInputError
from nlp_transfer.hub.card import card_for_repository
from nlp_transfer.hub.public import RECORDS_WITH_PATHS, public_record
from nlp_transfer.outputs import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_WEIGHTS_FILE,
    CALIBRATION_PNG,
    CARD_FILE,
    CONFIG_FILE,
    CONFUSION_MATRIX_PNG,
    DISTILL_REPORT_FILE,
    MERGED_FOLDER,
    METRICS_FILE,
    OWNER_FILE,
    POOLED_HEADS_FILE,
    RUN_CONFIG_FILE,
    SHARDED_INDEX_FILE,
    STAGING_SUFFIX,
    STATIC_CLASSIFIER_FILE,
    WEIGHTS_FILE,
    staging_path,
)

logger = logging.getLogger(__name__)


# The allow-list: the files a finished run folder holds, by name. transformers writes the weights, config,
# generation config and tokenizer (which tokenizer files depends on the model: WordPiece, BPE, sentencepiece);
# peft the adapter; this package the card, the records and the plots. The same names go from `merged/`.
TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
PUBLISHED_FILES: frozenset[str] = frozenset(
    {
        CONFIG_FILE,
        WEIGHTS_FILE,
        SHARDED_INDEX_FILE,
        ADAPTER_CONFIG_FILE,
        ADAPTER_WEIGHTS_FILE,
        "generation_config.json",
        *TOKENIZER_FILES,
        CARD_FILE,
        METRICS_FILE,
        RUN_CONFIG_FILE,
        CONFUSION_MATRIX_PNG,
        CALIBRATION_PNG,
        # A pooled head's or a static student's code: trust_remote_code loads the repository without nlp-transfer.
        POOLED_HEADS_FILE,
        STATIC_CLASSIFIER_FILE,
        DISTILL_REPORT_FILE,  # a student's evidence: teacher and student side by side, as its card shows
    }
)
# Names that vary: the shards of sharded weights, and sentencepiece models (spiece.model, spm.model,
# sentencepiece.bpe.model, tokenizer.model).
PUBLISHED_NAME_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"model-\d+-of-\d+\.safetensors"),
    re.compile(r"[\w.-]+\.model"),
)

# Why a path stays local, as `--dry-run` shows it.
REFUSED_SYMLINK = "a symlink: never followed, since it can point outside the folder"
REFUSED_TOKEN = "its name suggests a token"
REFUSED_FILE = "not a file nlp-transfer writes"
REFUSED_FOLDER = f"not a folder nlp-transfer writes (only {MERGED_FOLDER}/ goes up)"
REFUSED_SPECIAL = "not a regular file"

# What the classifier needs to load, also in merged/ (with the shards and sentencepiece models of
# PUBLISHED_NAME_PATTERNS): one refused as a symlink or special file stops the push (`_check_loadable`).
LOADING_FILES: frozenset[str] = frozenset(
    {CONFIG_FILE, WEIGHTS_FILE, SHARDED_INDEX_FILE, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, *TOKENIZER_FILES}
)


# Tokenizer files whose names contain "token"; anything else naming a token stays local.
_TOKENIZER_NAMES = re.compile(r"tokenizer|special_tokens_map|added_tokens")


@dataclass
class UploadFile:
    """One file of the plan: its path in the repository (posix, relative to the folder) and its size in bytes.

    `source` is where a file made for this push alone is read from (an `Attachment`'s); None for the folder's own.
    """

    path: str
    size: int
    source: Path | None = None


@dataclass(frozen=True)
class Attachment:
    """Files made for one push, not kept in the run folder (the verified ONNX export of `push --with-onnx`): every
    file of `folder` but its card goes up under `prefix` in the same commit, and `card_section` is added to the
    folder's card."""

    folder: Path
    prefix: str
    card_section: str


@dataclass(frozen=True)
class RefusedFile:
    """A path of the folder that stays local, and why; a folder (not looked into) ends in `/`."""

    path: str
    reason: str


@dataclass
class UploadPlan:
    """What a push sends (`files`, sorted by path) and what it leaves in the folder (`refused`, sorted)."""

    files: list[UploadFile]
    refused: list[RefusedFile] = field(default_factory=list)


def upload_plan(model_dir: str | Path, attachment: Attachment | None = None) -> UploadPlan:
    """The files a push would upload and those it leaves local, from the allow-list (`PUBLISHED_FILES`), and the
    attachment's files under its prefix.

    Refuses what is not a finished classifier folder, so nothing half-made is published: a missing
    folder, an unfinished staging folder, no config.json, no safetensors weights.
    """
    folder = _check_folder(model_dir)
    try:
        files, refused = _survey(folder, prefix="")
    except OSError as error:
        raise UserInputError(
            f"Could not list {folder} to plan the push ({type(error).__name__}: {error}). Check its permissions."
        ) from None
    try:
        _check_contents(folder, {item.path for item in files})
    except UserInputError:
        _check_loadable(folder, refused)  # a required file refused as a symlink: say that, not "missing"
        raise
    if attachment is not None:
        files += _attached_files(attachment)
    return UploadPlan(sorted(files, key=lambda item: item.path), sorted(refused, key=lambda item: item.path))


def _attached_files(attachment: Attachment) -> list[UploadFile]:
    """The attachment's regular files under its prefix; its card stays out (its section joins the folder's card), and
    so does the package's bookkeeping."""
    files = []
    for path in sorted(attachment.folder.rglob("*")):
        relative = path.relative_to(attachment.folder).as_posix()
        if relative in (CARD_FILE, OWNER_FILE) or path.is_symlink() or not path.is_file():
            continue
        files.append(UploadFile(attachment.prefix + relative, path.stat().st_size, source=path))
    return files


def _survey(folder: Path, prefix: str) -> tuple[list[UploadFile], list[RefusedFile]]:
    """The allowed files under `folder` and the refused paths, relative to the run folder (`prefix` + name).

    Only the run folder itself and its `merged/` are looked into; `lstat` throughout, so no link is followed.
    """
    files: list[UploadFile] = []
    refused: list[RefusedFile] = []
    for entry in os.scandir(folder):
        if entry.name == OWNER_FILE:  # the package's list of what it wrote (outputs): local bookkeeping
            continue
        path = prefix + entry.name
        is_folder = entry.is_dir(follow_symlinks=False)
        reason = _refusal(entry, nested=bool(prefix))
        if reason is not None:
            refused.append(RefusedFile(path + "/" if is_folder else path, reason))
        elif is_folder:
            inner_files, inner_refused = _survey(Path(entry.path), prefix=f"{path}/")
            files += inner_files
            refused += inner_refused
        else:
            files.append(UploadFile(path=path, size=entry.stat(follow_symlinks=False).st_size))
    return files, refused


def _refusal(entry: os.DirEntry[str], nested: bool) -> str | None:
    """Why `entry` stays local, or None when it goes up (a published file, or the top-level merged/ folder)."""
    if entry.is_symlink():
        return REFUSED_SYMLINK
    if _names_a_token(entry.name):
        return REFUSED_TOKEN
    if entry.is_dir(follow_symlinks=False):
        return None if entry.name == MERGED_FOLDER and not nested else REFUSED_FOLDER
    if not entry.is_file(follow_symlinks=False):
        return REFUSED_SPECIAL  # a FIFO or device: reading it could block or never end
    if entry.name in PUBLISHED_FILES or any(p.fullmatch(entry.name) for p in PUBLISHED_NAME_PATTERNS):
        return None
    return REFUSED_FILE


def _card_bytes(card: str, repo_id: str) -> bytes:
    """The card's text as uploaded to `repo_id` (see `card_for_repository`), encoded."""
    return card_for_repository(card, repo_id).encode("utf-8")


def _upload_source(folder: Path, path: str) -> str | bytes:
    """The file's path, or for the run's JSON records their public copy (see `public_record`)."""
    if path in RECORDS_WITH_PATHS:
        try:
            return public_record(folder / path)
        except (ValueError, UnicodeDecodeError):
            return str(folder / path)  # not JSON we wrote: upload it as it is
    return str(folder / path)


def _item_source(folder: Path, item: UploadFile) -> str | bytes:
    """What the push sends for `item`: `_upload_source` of the folder's file, or of the attachment's."""
    if item.source is not None:
        return _upload_source(item.source.parent, item.source.name)
    return _upload_source(folder, item.path)


def format_plan(files: list[UploadFile], refused: list[RefusedFile] | None = None) -> str:
    """`--dry-run`'s table: each planned file with its size, a total; then, apart, each path left local and why."""
    lines = [_format_files(files)]
    if refused:
        width = max(len(item.path) for item in refused)
        lines.append(f"Not uploaded ({len(refused)}, left in the folder):")
        lines += [f"  {item.path:<{width}}  {item.reason}" for item in refused]
    return "\n".join(lines)


def _format_files(files: list[UploadFile]) -> str:
    if not files:
        return "  (no files)"
    sizes = [_human_size(item.size) for item in files]
    path_width = max(len(item.path) for item in files)
    size_width = max(len(size) for size in sizes)
    lines = [f"  {item.path:<{path_width}}  {size:>{size_width}}" for item, size in zip(files, sizes, strict=True)]
    total = sum(item.size for item in files)
    lines.append(f"  {len(files)} file{'s' if len(files) != 1 else ''}, {_human_size(total)} in total")
    return "\n".join(lines)


def _check_folder(model_dir: str | Path) -> Path:
    folder = Path(model_dir).expanduser()
    if folder.name.endswith(STAGING_SUFFIX):
        raise UserInputError(
            f"{folder} is the staging folder of an unfinished run (a killed or running one), not a trained "
            "classifier. Push the output folder that the run names once it has finished."
        )
    if not folder.exists():
        raise UserInputError(f"{folder} does not exist. Give the --output-dir of a finished training run.")
    if not folder.is_dir():
        raise UserInputError(f"{folder} is a file. Give the --output-dir folder of a finished training run.")
    if staging_path(folder).exists():
        logger.warning(
            "%s exists: a run is writing a new version of %s (or was killed); this push sends the finished one.",
            staging_path(folder),
            folder,
        )
    return folder


def _check_contents(folder: Path, planned: set[str]) -> None:
    if CONFIG_FILE not in planned:
        raise UserInputError(
            f"{folder} is not a trained classifier folder: it has no {CONFIG_FILE}. Give the --output-dir of a "
            "finished nlp-transfer run."
        )
    if ADAPTER_WEIGHTS_FILE in planned:
        if ADAPTER_CONFIG_FILE not in planned:
            raise UserInputError(
                f"{folder} has {ADAPTER_WEIGHTS_FILE} but no {ADAPTER_CONFIG_FILE}; the adapter cannot be loaded "
                "without it. Retrain, or push a complete output folder."
            )
        return
    if WEIGHTS_FILE in planned:
        return
    if SHARDED_INDEX_FILE in planned:
        _check_shards(folder, planned)
        return
    raise UserInputError(
        f"{folder} has no safetensors weights ({WEIGHTS_FILE}, sharded model-*.safetensors with "
        f"{SHARDED_INDEX_FILE}, or {ADAPTER_WEIGHTS_FILE}). Only safetensors weights are pushed; pickled "
        ".bin/.pt weights are not. Give the --output-dir of a finished nlp-transfer run."
    )


def _check_shards(folder: Path, planned: set[str]) -> None:
    try:
        index = json.loads((folder / SHARDED_INDEX_FILE).read_text(encoding="utf-8"))
        shards = set(index["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UserInputError(
            f"{folder / SHARDED_INDEX_FILE} is not a readable safetensors index (no 'weight_map')."
        ) from None
    missing = sorted(str(shard) for shard in shards if shard not in planned)
    if not shards or missing:
        raise UserInputError(
            f"{folder} is missing weight shards listed in {SHARDED_INDEX_FILE}: {', '.join(missing) or 'none listed'}."
        )


def _check_loadable(folder: Path, refused: list[RefusedFile]) -> None:
    """Stop when a file the classifier needs to load was refused: the push would publish a model that cannot load."""
    for item in refused:
        name = item.path.rsplit("/", 1)[-1]
        needed = name in LOADING_FILES or any(p.fullmatch(name) for p in PUBLISHED_NAME_PATTERNS)
        if not needed or item.reason not in (REFUSED_SYMLINK, REFUSED_SPECIAL):
            continue
        if item.reason == REFUSED_SYMLINK:
            problem = "is a symlink, which the push never follows (it can point outside the folder)"
            fix = "Copy the real file into the folder in place of the link"
        else:
            problem = "is not a regular file (a FIFO or device)"
            fix = "Replace it with the regular file training wrote"
        raise UserInputError(
            f"{folder} cannot be pushed: {item.path} {problem}, and the classifier cannot be loaded without it, "
            f"so the push would publish an incomplete model. {fix}, then push again. Nothing was uploaded."
        )


def _names_a_token(relpath: str) -> bool:
    """True when a folder or file name on the path mentions a token, tokenizer files aside."""
    return any("token" in _TOKENIZER_NAMES.sub("", part.lower()) for part in relpath.split("/"))


def _human_size(size: int | float) -> str:
    """Decimal units, as the Hub shows them: 612 B, 1.2 kB, 86.7 MB."""
    if size < 1000:
        return f"{int(size)} B"
    value, unit = size / 1000, "kB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"
