"""Fewer layers from a trained model: the K-layer students of `nlp-transfer distill --student layers:K`.

The student is the teacher itself with some encoder layers removed: its embeddings, the kept layers (their
weights unchanged) and its head, in the teacher's own class, so every loader of the teacher's architecture
reads it (`transformers.pipeline`, ONNX export, the Hub). Which layers: spread evenly from the bottom, as
DistilBERT initialised its 6 layers from every other one of BERT's 12 (Sanh et al., 2019).
"""

from __future__ import annotations

import copy

from torch import nn
from transformers import PreTrainedModel

from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.layers import architecture_spec, encoder_model_type

PER_LAYER_KEYS = ("layer_types",)
"""Config entries with one value per layer (ModernBERT's layer_types: which layers attend globally): the student
keeps its layers' entries. Only these: other lists may happen to be as long as the model is deep (DeBERTa's
pos_att_type)."""


def spread_layers(total: int, keep: int) -> list[int]:
    """`keep` of `total` layer indices, evenly spaced from the first: 12 -> 6 keeps 0, 2, 4, 6, 8, 10."""
    if not 1 <= keep < total:
        raise UserInputError(
            f"layers:{keep} needs 1 <= K < {total}: the teacher has {total} layers (K = {total} would copy it)."
        )
    return [(i * total) // keep for i in range(keep)]


def _layer_holder(model: PreTrainedModel) -> tuple[nn.Module, str]:
    """The module whose attribute is the ModuleList of encoder layers, and that attribute's name."""
    model_type = encoder_model_type(model.config.model_type)
    base = getattr(model, model.base_model_prefix)
    if model_type == "distilbert":
        return base.transformer, "layer"
    if model_type == "modernbert":
        return base, "layers"
    return base.encoder, "layer"  # BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa-v2


def fewer_layers(model: PreTrainedModel, keep: list[int]) -> PreTrainedModel:
    """A copy of `model` with only the encoder layers at indices `keep` (bottom to top), everything else shared
    in value. ALBERT shares one layer's weights across depths: its copy runs the shared layer len(keep) times."""
    spec = architecture_spec(model.config.model_type)
    total = model.config.num_hidden_layers
    student = copy.deepcopy(model)
    if not spec.shares_layer_weights:
        holder, name = _layer_holder(student)
        layers = getattr(holder, name)
        setattr(holder, name, nn.ModuleList([layers[i] for i in keep]))
        for depth, layer in enumerate(getattr(holder, name)):
            _renumber(layer, depth)
    config = student.config
    for key in PER_LAYER_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, list) and len(value) == total:
            setattr(config, key, [value[i] for i in keep])
    config.num_hidden_layers = len(keep)
    return student


def _renumber(layer: nn.Module, depth: int) -> None:
    """Layers that know their index (`layer_idx`, `layer_id`, for caches and per-layer choices) get their new one."""
    for module in layer.modules():
        for attribute in ("layer_idx", "layer_id"):
            if isinstance(getattr(module, attribute, None), int):
                setattr(module, attribute, depth)
