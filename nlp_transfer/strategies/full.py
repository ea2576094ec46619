"""`full`: every weight trains, at a learning rate 10-100x below a from-scratch one."""

from __future__ import annotations

from transformers import PreTrainedModel

from nlp_transfer.config import StrategyArguments
from nlp_transfer.strategies.base import PreparedModel, TransferStrategy


class FullFineTuning(TransferStrategy):
    name = "full"
    default_learning_rate = 2e-5
    summary = "every weight trains (learning rate 10-100x below from-scratch)"

    def prepare(self, model: PreTrainedModel, args: StrategyArguments) -> PreparedModel:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        # No custom groups: Trainer's AdamW already leaves biases and LayerNorm weights out of weight decay.
        return PreparedModel(model, param_groups=None, settings={"trains": "all weights"})
