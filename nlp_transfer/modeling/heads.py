"""How the classifier reads the encoder: the pooling, and the head classes that transformers' Auto classes know.

A BERT-family `*ForSequenceClassification` reads the `[CLS]` token (BERT and ALBERT through their pretrained
pooler). Sentence-transformers checkpoints (all-MiniLM, all-mpnet, bge, e5, gte, ...) were trained to be
read by mean pooling instead, and say so in their own files (`modules.json` -> `1_Pooling/config.json`);
ModernBERT names its pooling in `classifier_pooling`. `--pooling auto` follows the checkpoint:

- `pooler`: the architecture's own head, as transformers builds it (a folder any transformers loads).
- `cls`, `mean`, `max`: the last hidden states pooled that way (masked: padding never counts), then
  dropout and one new linear layer. ModernBERT's own head does `cls` and `mean` itself
  (`classifier_pooling`), so it keeps its head for those.

The pooled heads are classes made here for each supported architecture, subclasses of its own
`*PreTrainedModel` with the encoder under its usual attribute (`bert`, `roberta`, ...): pretrained weights
load as they do for the architecture's own classifier, `layers.py` sees the same modules, and their config
is the architecture's config with `pooling` added and its own `model_type` (`nlp-transfer-pooled-bert`).
Importing this module registers them with `AutoConfig` and `AutoModelForSequenceClassification` (the package
imports it on `import nlp_transfer`), so `transformers.pipeline("text-classification", model=DIR)` loads
such a folder once `nlp_transfer` is imported, without `trust_remote_code`.
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.modeling_auto import MODEL_MAPPING
from transformers.utils import cached_file

from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.checkpoints import Checkpoint
from nlp_transfer.modeling.layers import SUPPORTED_MODEL_TYPES, pooled_model_type

logger = logging.getLogger(__name__)

POOLING_CHOICES: tuple[str, ...] = ("auto", "pooler", "cls", "mean", "max")
OWN_HEAD = "pooler"
"""`--pooling pooler`: the architecture's own classification head, unchanged."""
POOLED_MODES: tuple[str, ...] = ("cls", "mean", "max")
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


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, mode: str) -> torch.Tensor:
    """(batch, tokens, hidden) -> (batch, hidden): the first token, or the masked mean or max of the tokens."""
    if mode == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], device=hidden.device)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    if mode == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    raise ValueError(f"Unknown pooling {mode!r}; expected one of {', '.join(POOLED_MODES)}.")


def head_dropout(config: PretrainedConfig) -> float:
    """The architecture's own classifier dropout setting, else its hidden dropout, else 0.1."""
    for name in ("classifier_dropout", "seq_classif_dropout", "hidden_dropout_prob", "dropout"):
        value = getattr(config, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return 0.1


class PooledHeadMixin:
    """The forward of a pooled classifier: encoder -> pooling -> dropout -> linear; the loss by problem_type.

    Mixed into a subclass of the architecture's `*PreTrainedModel` (see `_pooled_classes`), whose weight
    initialisation, attention settings and checkpoint loading it keeps.
    """

    encoder_class: type[PreTrainedModel]

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        # The pretrained pooler is not read by a pooled head: without it, no unused weights to train or save.
        kwargs = {"add_pooling_layer": False} if "add_pooling_layer" in _parameters(self.encoder_class) else {}
        setattr(self, self.base_model_prefix, self.encoder_class(config, **kwargs))
        self.dropout = nn.Dropout(head_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def head_features(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """What the linear layer reads: the pooled vector, L2-normalised when the config says `normalize`."""
        pooled = pool(hidden, attention_mask, self.config.pooling)
        return nn.functional.normalize(pooled, dim=-1) if getattr(self.config, "normalize", False) else pooled

    def pooled_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, Any]:
        """(what the linear layer reads, the encoder's outputs) for a batch of the model's inputs."""
        encoder = getattr(self, self.base_model_prefix)
        given = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids if "token_type_ids" in _parameters(type(encoder).forward) else None,
            **kwargs,
        }
        outputs = encoder(**{name: value for name, value in given.items() if value is not None})
        return self.head_features(outputs.last_hidden_state, attention_mask), outputs

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        features, outputs = self.pooled_features(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        logits = self.classifier(self.dropout(features)) * getattr(self.config, "logit_scale", 1.0)
        loss = self.loss_function(labels, logits, self.config) if labels is not None else None
        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=getattr(outputs, "hidden_states", None),
            attentions=getattr(outputs, "attentions", None),
        )


def _parameters(function: Any) -> set[str]:
    return set(inspect.signature(function).parameters)


_CLASSES: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]] = {}


def _pooled_classes(model_type: str) -> tuple[type[PretrainedConfig], type[PreTrainedModel]]:
    """(config class, model class) of the pooled classifier for a supported architecture, made once."""
    if model_type not in _CLASSES:
        raise UserInputError(
            f"Pooled heads exist for {', '.join(SUPPORTED_MODEL_TYPES)}, not {model_type!r}: use --pooling pooler."
        )
    return _CLASSES[model_type]


def _make_pooled_classes(model_type: str) -> tuple[type[PretrainedConfig], type[PreTrainedModel]]:
    base_config = CONFIG_MAPPING[model_type]
    encoder = MODEL_MAPPING[base_config]
    pretrained = next(
        cls for cls in encoder.__mro__[1:] if issubclass(cls, PreTrainedModel) and cls is not PreTrainedModel
    )
    stem = base_config.__name__.removesuffix("Config")
    config_class = type(f"Pooled{stem}Config", (base_config,), {"model_type": pooled_model_type(model_type)})
    model_class = type(
        f"Pooled{stem}ForSequenceClassification",  # the name picks transformers' sequence-classification loss
        (PooledHeadMixin, pretrained),
        {
            "config_class": config_class,
            "encoder_class": encoder,
            # Checkpoints that carry a pooler (BERT, ALBERT) load fine without it: no warning about it.
            "_keys_to_ignore_on_load_unexpected": [r"(^|\.)pooler\."],
        },
    )
    for cls in (config_class, model_class):
        cls.__module__ = __name__
        globals()[cls.__name__] = cls  # module attributes, so that pickle and copy find them
    return config_class, model_class


def register_heads() -> None:
    """Register the pooled heads with AutoConfig and AutoModelForSequenceClassification (idempotent)."""
    for model_type in SUPPORTED_MODEL_TYPES:
        if model_type in _CLASSES:
            continue
        config_class, model_class = _make_pooled_classes(model_type)
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModelForSequenceClassification.register(config_class, model_class, exist_ok=True)
        _CLASSES[model_type] = (config_class, model_class)


register_heads()
