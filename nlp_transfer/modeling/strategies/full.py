"""`full`: every weight trains, at a learning rate 10-100x below a from-scratch one.

Optionally with the word embeddings kept as pretrained (`--freeze-word-embeddings`), layer-wise learning-rate
decay (`--layer-lr-decay`), a head multiplier, and gradual unfreezing (ULMFiT); without them Trainer's own AdamW
groups are used.
"""

from __future__ import annotations

from transformers import PreTrainedModel

from nlp_transfer.modeling.layers import architecture_view
from nlp_transfer.modeling.strategies.base import (
    PreparedModel,
    StrategyContext,
    TransferStrategy,
    layerwise_groups,
    unfreeze_units,
)


class FullFineTuning(TransferStrategy):
    name = "full"
    default_learning_rate = 2e-5
    summary = "every weight trains (learning rate 10-100x below from-scratch)"

    def prepare(self, model: PreTrainedModel, context: StrategyContext) -> PreparedModel:
        view = architecture_view(model)  # also refuses architectures outside the supported BERT family
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        args = context.args
        if args.freeze_word_embeddings:
            # Before the groups and unfreezing units are built, which leave frozen parameters out.
            model.get_input_embeddings().weight.requires_grad_(False)
        decay = 1.0 if args.layer_lr_decay is None else args.layer_lr_decay
        settings = {
            "trains": "all weights but the word embeddings" if args.freeze_word_embeddings else "all weights",
            "layer_lr_decay": decay,
            "head_lr_multiplier": args.head_lr_multiplier,
        }
        if decay == 1.0 and args.head_lr_multiplier == 1.0 and not args.gradual_unfreeze:
            # Trainer's AdamW already leaves biases and LayerNorm weights out of weight decay.
            return PreparedModel(model, param_groups=None, settings=settings)
        units = unfreeze_units(model, view) if args.gradual_unfreeze else None
        groups = layerwise_groups(model, view, context, decay)
        settings["gradual_unfreeze"] = args.gradual_unfreeze
        settings["unfreeze_every_steps"] = args.unfreeze_every_steps
        return PreparedModel(model, param_groups=groups, settings=settings, unfreeze_units=units)
