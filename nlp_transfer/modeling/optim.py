"""Optimizer parameter groups: layer-wise learning-rate decay, and no weight decay on biases and norms.

Trainer has no per-layer learning rates (transformers #10140), so strategies that want them build groups
here and hand them to `TransferTrainer`. Depth 0 is the embeddings, 1..L the encoder layers, L+1 the
pooler and head. The top encoder layer gets the base rate, each layer below it the decay factor once
more, the embeddings the lowest; the head gets the base rate times `head_lr_multiplier`.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def excluded_from_weight_decay(name: str, parameter: nn.Parameter) -> bool:
    """Biases and normalisation weights (every 1-d tensor) are not decayed, as Trainer does by default."""
    return parameter.ndim < 2 or name.endswith(".bias")


def depth_learning_rate(depth: int, num_layers: int, base_lr: float, decay: float, head_multiplier: float) -> float:
    """The learning rate of a parameter at `depth` (0 embeddings, 1..L layers, L+1 head)."""
    if depth > num_layers:
        return base_lr * head_multiplier
    return base_lr * decay ** (num_layers - depth)


def layerwise_param_groups(
    model: nn.Module,
    depths: dict[str, int],
    num_layers: int,
    base_lr: float,
    weight_decay: float,
    decay: float = 1.0,
    head_multiplier: float = 1.0,
) -> list[dict[str, Any]]:
    """One group per (depth, decayed or not) of the trainable parameters, each with its own learning rate.

    Gradual unfreezing builds the groups while every unit still trains and freezes units afterwards: frozen
    ones get no gradient, so AdamW leaves them alone until they are unfrozen, and the optimizer is never
    rebuilt. Parameters frozen for good (a LoRA base weight) are left out.
    """
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        depth = depths[name]
        no_decay = excluded_from_weight_decay(name, parameter)
        key = (depth, no_decay)
        if key not in groups:
            part = "embeddings" if depth == 0 else ("head" if depth > num_layers else f"layer_{depth - 1}")
            groups[key] = {
                "params": [],
                "lr": depth_learning_rate(depth, num_layers, base_lr, decay, head_multiplier),
                "weight_decay": 0.0 if no_decay else weight_decay,
                "name": f"{part}/{'no_decay' if no_decay else 'decay'}",
            }
        groups[key]["params"].append(parameter)
    return [groups[key] for key in sorted(groups)]
