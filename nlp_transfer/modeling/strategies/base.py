"""What every transfer strategy provides, and the parameter counts every run records.

A strategy decides how the model is built (pretrained or random) and what of it trains. It turns a
model into a `PreparedModel`: the model to train, optional optimizer parameter groups (None means
Trainer's own AdamW groups), and for gradual unfreezing the units to unfreeze from the top down.
A strategy never reads files and never touches data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from nlp_transfer.config.strategy import STRATEGY_OPTIONS, StrategyArguments
from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.checkpoints import Checkpoint, load_classification_model
from nlp_transfer.modeling.layers import ArchitectureView, architecture_view
from nlp_transfer.modeling.optim import layerwise_param_groups


@dataclass
class StrategyContext:
    """What a strategy may know besides the model: its options and the optimizer's base settings."""

    args: StrategyArguments
    learning_rate: float
    weight_decay: float
    base_model_id: str | None = None
    """The Hub id (or local path) adapters must name as their base."""


@dataclass
class PreparedModel:
    """The model to train, its optimizer groups, and the settings to record in metrics.json."""

    model: nn.Module
    param_groups: list[dict[str, Any]] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    unfreeze_units: list[list[nn.Parameter]] | None = None
    """Gradual unfreezing: parameter units from the top (head first) down; None when not used."""
    is_adapter: bool = False
    """True when the model is a peft model whose folder holds an adapter, not full weights."""


class TransferStrategy:
    """Base class: subclasses set `name`, `default_learning_rate` and `summary`, and override `prepare`."""

    name: str = ""
    default_learning_rate: float = 2e-5
    summary: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        """The StrategyArguments this strategy reads besides `strategy` (declared in config.STRATEGY_OPTIONS)."""
        return STRATEGY_OPTIONS[self.name]

    def load_model(self, checkpoint: Checkpoint, config: PretrainedConfig) -> PreTrainedModel:
        """The pretrained encoder with a new classification head; `scratch` overrides this."""
        return load_classification_model(checkpoint, config)

    def prepare(self, model: PreTrainedModel, context: StrategyContext) -> PreparedModel:
        raise NotImplementedError


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights are counted once."""
    trainable = total = 0
    for parameter in model.parameters():
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return trainable, total


def set_trainable(modules: list[nn.Module], trainable: bool) -> None:
    for module in modules:
        for parameter in module.parameters():
            parameter.requires_grad_(trainable)


def top_layers_view(model: nn.Module, args: StrategyArguments) -> tuple[ArchitectureView, int]:
    """The model's architecture view and --train-top-layers K, checked against its number of layers."""
    view = architecture_view(model)
    top = args.train_top_layers
    if not 0 <= top <= len(view.layers):
        raise UserInputError(
            f"--train-top-layers {top} is outside 0..{len(view.layers)}: this "
            f"{view.spec.model_type} model has {len(view.layers)} encoder layers."
        )
    return view, top


def unique_modules(modules: list[nn.Module]) -> list[nn.Module]:
    """Modules in order without repeats (ALBERT lists its one shared layer at every depth)."""
    seen: set[int] = set()
    result = []
    for module in modules:
        if id(module) not in seen:
            seen.add(id(module))
            result.append(module)
    return result


def layerwise_groups(
    model: nn.Module, view: ArchitectureView, context: StrategyContext, decay: float
) -> list[dict[str, Any]]:
    """Parameter groups with layer-wise decayed learning rates for `model` as `view` sees it."""
    return layerwise_param_groups(
        model,
        view.parameter_depths(model),
        num_layers=len(view.layers),
        base_lr=context.learning_rate,
        weight_decay=context.weight_decay,
        decay=decay,
        head_multiplier=context.args.head_lr_multiplier,
    )


def unfreeze_units(model: nn.Module, view: ArchitectureView) -> list[list[nn.Parameter]]:
    """Trainable parameters grouped from the top down: head and pooler first, then layer L, L-1, ..., embeddings.

    Frozen-for-good parameters (requires_grad False now, e.g. a LoRA base weight) are left out.
    """
    depths = view.parameter_depths(model)
    by_depth: dict[int, list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            by_depth.setdefault(depths[name], []).append(parameter)
    return [by_depth[depth] for depth in sorted(by_depth, reverse=True)]
