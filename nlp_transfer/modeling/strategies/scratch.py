"""`scratch`: the same architecture with random weights, the baseline that shows what transfer saves.

The checkpoint's config (sizes) and tokenizer are kept; its weights are not loaded.
"""

from __future__ import annotations

from transformers import AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel

from nlp_transfer.modeling.checkpoints import Checkpoint
from nlp_transfer.modeling.layers import architecture_view
from nlp_transfer.modeling.strategies.base import PreparedModel, StrategyContext, TransferStrategy


class FromScratch(TransferStrategy):
    name = "scratch"
    default_learning_rate = 5e-4
    summary = "same architecture, random initialisation (the no-transfer baseline)"

    def load_model(self, checkpoint: Checkpoint, config: PretrainedConfig) -> PreTrainedModel:
        # Random initialisation follows the seed set before this call.
        return AutoModelForSequenceClassification.from_config(config, trust_remote_code=checkpoint.trust_remote_code)

    def prepare(self, model: PreTrainedModel, context: StrategyContext) -> PreparedModel:
        architecture_view(model)  # refuses architectures outside the supported BERT family
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return PreparedModel(model, param_groups=None, settings={"trains": "all weights, randomly initialised"})
