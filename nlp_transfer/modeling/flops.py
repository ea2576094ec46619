"""Floating-point operations of a training or prediction step, counted from the live model and the real lengths.

What a benchmark divides by the time to get achieved FLOP/s (and, against a measured matrix-multiply peak, the
share of the machine a run used). Counted per encoder layer, from the weights each layer holds and which of them
train, so every strategy (frozen layers, LoRA adapters, a probe) is counted as it runs:

- a weight matrix of n entries costs 2n per token it is applied to in the forward pass; backward adds 2n for
  the gradient of its input and 2n for the gradient of the weight. So a trained weight costs 6n per token, a
  frozen one that gradients must pass through (something below it trains) 4n, and a frozen one below the
  lowest trained parameter 2n (forward only);
- attention's sequence-length term: a layer's scores and weighted sum cost 4 h l^2 for a sequence of l tokens
  (hidden size h) forward, and 3x that where gradients flow through the layer (no weights of its own, so no
  weight gradient);
- encoder layers and the embeddings' projections see every real token; the pooler and head see one vector per
  sequence. Token lookups, biases, LayerNorm, softmax and activations are left out (about 1% of a BERT step).

Tokens are the real ones: padding is waste, so a run that pads more shows a lower share of the peak.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from nlp_transfer.modeling.layers import architecture_view

FORWARD, PASS_GRADIENT, TRAINED = 2, 4, 6
"""FLOPs per weight entry and token: forward only, forward + input gradient, + weight gradient."""
ATTENTION_FORWARD = 4
"""Attention scores (Q K^T) and weighted sum (A V): 2 h l^2 each per sequence of l tokens, forward."""


@dataclass(frozen=True)
class TokenCounts:
    """What a batch or a data set feeds the model: sequences, real tokens, and the sum of squared lengths."""

    sequences: int
    tokens: int
    squared: int

    @classmethod
    def of(cls, lengths: Iterable[int]) -> TokenCounts:
        values = [int(length) for length in lengths]
        return cls(len(values), sum(values), sum(length * length for length in values))


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one pass over some sequences, by part of the model."""

    embeddings: float
    layers: float
    attention: float
    head: float

    @property
    def total(self) -> float:
        return self.embeddings + self.layers + self.attention + self.head


def training_flops(model: nn.Module, counts: TokenCounts) -> FlopCount:
    """FLOPs of a training step (forward and backward) of `model` as it is prepared (frozen/LoRA/full)."""
    return _count(model, counts, training=True)


def inference_flops(model: nn.Module, counts: TokenCounts) -> FlopCount:
    """FLOPs of a forward pass."""
    return _count(model, counts, training=False)


def _count(model: nn.Module, counts: TokenCounts, training: bool) -> FlopCount:
    view = architecture_view(model)
    # The parts in the order the forward pass runs them; a gradient reaches every part from the lowest one
    # that trains upwards (the pooler sits below the head: a probe passes no gradient through it).
    parts: list[tuple[str, list[nn.Module], int]] = [("embeddings", [view.embeddings], counts.tokens)]
    parts += [("layers", [layer], counts.tokens) for layer in view.layers]
    if view.pooler is not None:
        parts.append(("head", [view.pooler], counts.sequences))
    parts.append(("head", view.head, counts.sequences))
    trains = [any(p.requires_grad for module in modules for p in module.parameters()) for _, modules, _ in parts]
    lowest = trains.index(True) if training and any(trains) else len(parts)

    flops = {"embeddings": 0.0, "layers": 0.0, "attention": 0.0, "head": 0.0}
    hidden = int(_config(model).hidden_size)
    for position, (part, modules, tokens) in enumerate(parts):
        reached = position >= lowest
        linears = {
            id(m): m
            for module in modules
            for name, m in module.named_modules()
            if isinstance(m, nn.Linear) and not _idle(name)
        }
        for linear in linears.values():
            if training and linear.weight.requires_grad:
                per_entry = TRAINED
            else:
                per_entry = PASS_GRADIENT if reached else FORWARD
            flops[part] += per_entry * linear.weight.numel() * tokens
        if part == "layers":
            flops["attention"] += ATTENTION_FORWARD * hidden * counts.squared * (3 if reached else 1)
    return FlopCount(**flops)


def _idle(name: str) -> bool:
    """peft's modules_to_save keeps the frozen original beside the trained copy; only the copy runs."""
    return "original_module" in name.split(".")


def _config(model: nn.Module):
    """The model's transformers config, through a peft wrapper."""
    config = getattr(model, "config", None)
    return config if config is not None else model.get_base_model().config
