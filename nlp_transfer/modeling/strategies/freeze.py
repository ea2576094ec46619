"""`freeze`: embeddings and lower layers frozen; the top K layers and the head train. K=0 is a linear probe.

Frozen weights get `requires_grad=False`, so they receive no gradients and Trainer's optimizer, which
holds only trainable parameters, never sees them. The pretrained pooler (BERT, ALBERT) sits above the
top layer: it trains when K >= 1 and stays frozen in a probe. For ALBERT the K top layers are one shared
layer, so any K >= 1 trains it (at every depth).
"""

from __future__ import annotations

from transformers import PreTrainedModel

from nlp_transfer.modeling.strategies.base import (
    PreparedModel,
    StrategyContext,
    TransferStrategy,
    set_trainable,
    top_layers_view,
)


class LayerFreezing(TransferStrategy):
    name = "freeze"
    default_learning_rate = 1e-4
    summary = "head + top --train-top-layers layers train; embeddings and lower layers frozen"

    def prepare(self, model: PreTrainedModel, context: StrategyContext) -> PreparedModel:
        args = context.args
        view, top = top_layers_view(model, args)
        set_trainable([model], False)
        set_trainable(view.head, True)
        if top > 0:
            set_trainable(view.layers[len(view.layers) - top :], True)
            if view.pooler is not None:
                set_trainable([view.pooler], True)
        if args.train_embeddings:
            set_trainable([view.embeddings], True)
        settings = {
            "train_top_layers": top,
            "frozen_layers": len(view.layers) - top,
            "train_embeddings": args.train_embeddings,
            "linear_probe": top == 0 and not args.train_embeddings,
        }
        return PreparedModel(model, param_groups=None, settings=settings)
