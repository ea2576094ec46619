"""What every transfer strategy provides, and the parameter counts every run records.

A strategy decides how the model is built (pretrained or random) and what of it trains. It turns a
model into a `PreparedModel`: the model to train plus optional optimizer parameter groups (None means
Trainer's own AdamW groups). A strategy never reads files and never touches data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from nlp_transfer.checkpoints import Checkpoint, load_classification_model
from nlp_transfer.config import StrategyArguments


@dataclass
class PreparedModel:
    """The model to train, its optimizer groups, and the settings to record in metrics.json."""

    model: nn.Module
    param_groups: list[dict[str, Any]] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


class TransferStrategy:
    """Base class: subclasses set `name`, `default_learning_rate` and `summary`, and override `prepare`."""

    name: str = ""
    default_learning_rate: float = 2e-5
    summary: str = ""

    def load_model(self, checkpoint: Checkpoint, config: PretrainedConfig) -> PreTrainedModel:
        """The pretrained encoder with a new classification head; `scratch` overrides this."""
        return load_classification_model(checkpoint, config)

    def prepare(self, model: PreTrainedModel, args: StrategyArguments) -> PreparedModel:
        raise NotImplementedError


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights are counted once."""
    trainable = total = 0
    for parameter in model.parameters():
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return trainable, total
