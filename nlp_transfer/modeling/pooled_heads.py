"""The pooled classification heads (cls, mean, max) for every supported architecture: torch and transformers only.

This file is the one source of these classes. The package imports it (`nlp_transfer.modeling.heads` registers
them with transformers' Auto classes), and `save_pretrained` copies it as it is into every folder with such a head,
with an `auto_map` in config.json (the classes are registered for auto classes below), so that

    AutoModelForSequenceClassification.from_pretrained(FOLDER, trust_remote_code=True)
    pipeline("text-classification", model=FOLDER, trust_remote_code=True)

load the folder where nlp-transfer is not installed. It must import nothing but the standard library, torch and
transformers (a test holds it). Where nlp-transfer is imported, its registered classes load the folder and this
copy never runs.

A pooled classifier is a subclass of the architecture's own `*PreTrainedModel` (weights, attention settings and
checkpoint loading as the architecture's classifier) with the encoder under its usual attribute: encoder -> masked
pooling of the last hidden states -> optional L2 normalisation -> dropout -> one linear layer (times
`logit_scale`). Its config is the architecture's config with `pooling`, `normalize`, `logit_scale` and its own
`model_type` (`nlp-transfer-pooled-bert`, ...).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.modeling_auto import MODEL_MAPPING

POOLED_MODEL_TYPE_PREFIX = "nlp-transfer-pooled-"
POOLED_ARCHITECTURES: tuple[str, ...] = (
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "deberta-v2",
    "electra",
    "albert",
    "modernbert",
)
"""The architectures with a pooled head: the package's supported model types (a test holds them equal)."""
POOLED_MODES: tuple[str, ...] = ("cls", "mean", "max")


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


def _parameters(function: Any) -> set[str]:
    return set(inspect.signature(function).parameters)


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


def _make_pooled_classes(model_type: str) -> tuple[type[PretrainedConfig], type[PreTrainedModel]]:
    base_config = CONFIG_MAPPING[model_type]
    encoder = MODEL_MAPPING[base_config]
    pretrained = next(
        cls for cls in encoder.__mro__[1:] if issubclass(cls, PreTrainedModel) and cls is not PreTrainedModel
    )
    stem = base_config.__name__.removesuffix("Config")
    config_class = type(f"Pooled{stem}Config", (base_config,), {"model_type": POOLED_MODEL_TYPE_PREFIX + model_type})
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
        globals()[cls.__name__] = cls  # module attributes: what auto_map names, and what pickle and copy find
    # save_pretrained then copies this file into the folder and names these classes in config.json's auto_map.
    config_class.register_for_auto_class("AutoConfig")
    model_class.register_for_auto_class("AutoModelForSequenceClassification")
    return config_class, model_class


POOLED_CLASSES: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]] = {
    model_type: _make_pooled_classes(model_type) for model_type in POOLED_ARCHITECTURES
}
"""model_type -> (config class, model class) of its pooled classifier, made when this module is imported."""
