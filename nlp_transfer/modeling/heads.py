"""How the classifier reads the encoder: the pooling, and the head classes that transformers' Auto classes know.

A BERT-family `*ForSequenceClassification` reads the `[CLS]` token (BERT and ALBERT through their pretrained
pooler). Sentence-transformers checkpoints (all-MiniLM, all-mpnet, bge, e5, gte, ...) were trained to be
read by mean pooling instead, and say so in their own files (`modules.json` -> `1_Pooling/config.json`);
ModernBERT names its pooling in `classifier_pooling`. `--pooling auto` follows the checkpoint:

- `pooler`: the architecture's own head, as transformers builds it (a folder any transformers loads).
- `cls`, `mean`, `max`: the last hidden states pooled that way (masked: padding never counts), then
  dropout and one new linear layer. ModernBERT's own head does `cls` and `mean` itself
  (`classifier_pooling`), so it keeps its head for those.

The pooled heads are classes made in `pooled_heads.py` (torch and transformers only: its copy in each saved folder
loads the folder where nlp-transfer is not installed) for each supported architecture, subclasses of its own
`*PreTrainedModel` with the encoder under its usual attribute (`bert`, `roberta`, ...): pretrained weights
load as they do for the architecture's own classifier, `layers.py` sees the same modules, and their config
is the architecture's config with `pooling` added and its own `model_type` (`nlp-transfer-pooled-bert`).
Importing this module registers them with `AutoConfig` and `AutoModelForSequenceClassification` (the package
imports it on `import nlp_transfer`), so `transformers.pipeline("text-classification", model=DIR)` loads
such a folder once `nlp_transfer` is imported, without `trust_remote_code` (elsewhere, `trust_remote_code=True`
runs the folder's copy of `pooled_heads.py`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.utils import cached_file

from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.checkpoints import Checkpoint
from nlp_transfer.modeling.layers import SUPPORTED_MODEL_TYPES
from nlp_transfer.modeling.pooled_heads import POOLED_CLASSES, POOLED_MODES, pool  # noqa: F401 (pool: for importers)

logger = logging.getLogger(__name__)

POOLING_CHOICES: tuple[str, ...] = ("auto", "pooler", "cls", "mean", "max")
OWN_HEAD = "pooler"
"""`--pooling pooler`: the architecture's own classification head, unchanged."""
MODERNBERT_POOLINGS: tuple[str, ...] = ("cls", "mean")
"""What ModernBERT's own head does itself (`classifier_pooling`)."""

ST_MODULES_FILE = "modules.json"
ST_CONFIG_FILES = ("sentence_bert_config.json", "config_sentence_transformers.json")
ST_POOLING_TYPE = "sentence_transformers.models.Pooling"
ST_NORMALIZE_TYPE = "sentence_transformers.models.Normalize"
LOGIT_SCALE = 20.0
"""Logits of a normalised head are scaled by this: unit vectors give dot products in [-1, 1], too flat for a
softmax; 20 is sentence-transformers' scale for cosine similarities (MultipleNegativesRankingLoss)."""
# Sentence-transformers' pooling flags -> this package's mode. The flags it has no exact head for are read
# as the nearest one (the reason says so): a weighted or sqrt-length mean is a mean up to a per-text factor.
_ST_FLAGS: tuple[tuple[str, str], ...] = (
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean"),
    ("pooling_mode_weightedmean_tokens", "mean"),
)


@dataclass(frozen=True)
class PoolingChoice:
    """The pooling a run uses, why, and whether the architecture's own head does it."""

    mode: str
    """pooler | cls | mean | max."""
    reason: str
    own_head: bool
    """True when the folder holds the architecture's own classifier (loadable by transformers alone)."""
    normalize: bool = False
    """L2-normalise the pooled vector first (a sentence-transformers checkpoint ending in a Normalize module)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------- choosing the pooling


def resolve_pooling(requested: str, checkpoint: Checkpoint, config: PretrainedConfig) -> PoolingChoice:
    """`--pooling` resolved for this checkpoint: `auto` reads what the checkpoint was trained with."""
    if requested not in POOLING_CHOICES:
        raise UserInputError(f"--pooling {requested!r} is not one of: {', '.join(POOLING_CHOICES)}.")
    if requested == "auto":
        return _auto_pooling(checkpoint, config)
    if requested == OWN_HEAD:
        return PoolingChoice(OWN_HEAD, f"--pooling {OWN_HEAD}: {own_head_description(config)}", own_head=True)
    return PoolingChoice(requested, f"--pooling {requested}", own_head=_own_head_pools(config, requested))


def _own_head_pools(config: PretrainedConfig, mode: str, normalize: bool = False) -> bool:
    """True when the architecture's own head pools this way itself (ModernBERT: cls and mean, unnormalised)."""
    return config.model_type == "modernbert" and mode in MODERNBERT_POOLINGS and not normalize


def _auto_pooling(checkpoint: Checkpoint, config: PretrainedConfig) -> PoolingChoice:
    found = sentence_transformers_pooling(checkpoint)
    if found is not None:
        mode, reason, normalize = found
        return PoolingChoice(mode, reason, own_head=_own_head_pools(config, mode, normalize), normalize=normalize)
    if config.model_type == "modernbert":
        mode = getattr(config, "classifier_pooling", "cls")
        return PoolingChoice(mode, f"ModernBERT's classifier_pooling is {mode!r} in the checkpoint's config", True)
    return PoolingChoice(
        OWN_HEAD, f"the checkpoint names no pooling of its own: {own_head_description(config)}", own_head=True
    )


def own_head_description(config: PretrainedConfig) -> str:
    """What the architecture's own head reads, in words."""
    if config.model_type in ("bert", "albert"):
        return f"the {config.model_type} head reads [CLS] through the pretrained pooler"
    if config.model_type == "modernbert":
        return f"the modernbert head pools by {getattr(config, 'classifier_pooling', 'cls')}"
    return f"the {config.model_type} head reads the first token ([CLS]/<s>)"


def sentence_transformers_pooling(checkpoint: Checkpoint) -> tuple[str, str, bool] | None:
    """(mode, reason, normalize) from a sentence-transformers checkpoint's own files; None for any other one."""
    modules = _checkpoint_json(checkpoint, ST_MODULES_FILE)
    if not isinstance(modules, list):
        return None
    folder = next((m.get("path") for m in modules if isinstance(m, dict) and m.get("type") == ST_POOLING_TYPE), None)
    if folder is None:
        return None
    pooling_file = f"{folder}/config.json" if folder else "config.json"
    flags = _checkpoint_json(checkpoint, pooling_file)
    if not isinstance(flags, dict):
        return None
    normalize = any(isinstance(m, dict) and m.get("type") == ST_NORMALIZE_TYPE for m in modules)
    normalized = f", then L2-normalised ({ST_MODULES_FILE} ends in a Normalize module)" if normalize else ""
    for flag, mode in _ST_FLAGS:
        if flags.get(flag):
            exact = flag in ("pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens")
            nearest = "" if exact else f" (read as {mode}, the nearest pooling this package has)"
            return (
                mode,
                f"a sentence-transformers checkpoint: {pooling_file} says {flag}{nearest}{normalized}",
                normalize,
            )
    return None


def copy_sentence_transformers_files(checkpoint: Checkpoint, target: Path) -> list[str]:
    """Write a sentence-transformers checkpoint's module files (modules.json, each module's config.json, the
    sentence-bert config) into `target`, so that a checkpoint derived from it (`adapt`) is read the same way
    by `--pooling auto`; the files written, none for any other checkpoint."""
    modules = _checkpoint_json(checkpoint, ST_MODULES_FILE)
    if not isinstance(modules, list):
        return []
    names = [ST_MODULES_FILE, *ST_CONFIG_FILES]
    names += [f"{m['path']}/config.json" for m in modules if isinstance(m, dict) and m.get("path")]
    written = []
    for name in names:
        content = _checkpoint_json(checkpoint, name)
        if content is not None:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
            written.append(name)
    return written


def _checkpoint_json(checkpoint: Checkpoint, filename: str) -> Any:
    """A JSON file of the checkpoint (local folder or Hub, through the cache); None when absent or unreadable."""
    try:
        path = cached_file(
            checkpoint.source,
            filename,
            revision=checkpoint.revision,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    except OSError:
        return None
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def classification_config(config: PretrainedConfig, choice: PoolingChoice) -> PretrainedConfig:
    """The config of the classifier to build: the checkpoint's own, or its pooled-head twin."""
    if choice.own_head:
        if choice.mode != OWN_HEAD:  # ModernBERT's own head, told how to pool
            config.classifier_pooling = choice.mode
        return config
    config_class = _pooled_classes(config.model_type)[0]
    values = {key: value for key, value in config.to_dict().items() if key != "model_type"}
    head = {
        "pooling": choice.mode,
        "normalize": choice.normalize,
        "logit_scale": LOGIT_SCALE if choice.normalize else 1.0,
    }
    return config_class.from_dict({**values, **head})


# ------------------------------------------------------------------------------------------ the heads


def _pooled_classes(model_type: str) -> tuple[type[PretrainedConfig], type[PreTrainedModel]]:
    """(config class, model class) of the pooled classifier for a supported architecture."""
    if model_type not in POOLED_CLASSES:
        raise UserInputError(
            f"Pooled heads exist for {', '.join(SUPPORTED_MODEL_TYPES)}, not {model_type!r}: use --pooling pooler."
        )
    return POOLED_CLASSES[model_type]


def register_heads() -> None:
    """Register the pooled heads with AutoConfig and AutoModelForSequenceClassification (idempotent): the package
    loads such folders with its own classes, never with the copy of `pooled_heads.py` saved in them."""
    for config_class, model_class in POOLED_CLASSES.values():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModelForSequenceClassification.register(config_class, model_class, exist_ok=True)


register_heads()
