"""`hybrid`: LoRA on the layers below the top K, full training of the top K layers and the head,
layer-wise learning-rate decay, and optional gradual unfreezing (ULMFiT).

The top K layers are peft `modules_to_save`, so the adapter folder carries their trained weights; LoRA
targets are named by their qualified module names so that only the lower layers get adapters. For
ALBERT, whose layers share one set of weights, K >= 1 trains that shared layer in full (no LoRA).
"""

from __future__ import annotations

from torch import nn
from transformers import PreTrainedModel

from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.layers import architecture_view
from nlp_transfer.modeling.strategies.base import (
    PreparedModel,
    StrategyContext,
    TransferStrategy,
    layerwise_groups,
    top_layers_view,
    unfreeze_units,
    unique_modules,
)
from nlp_transfer.modeling.strategies.lora import (
    ALL_LINEAR,
    head_module_names,
    lora_config,
    lora_settings,
    lora_targets,
    module_names,
    wrap_with_lora,
)

DEFAULT_LAYER_LR_DECAY = 0.9


def _lower_layer_targets(lower: list[nn.Module], names: dict[int, str], targets: list[str] | str) -> list[str]:
    """Qualified names of the LoRA target modules inside the lower layers only."""
    qualified = []
    for layer in lower:
        prefix = names[id(layer)]
        for sub_name, sub_module in layer.named_modules():
            if not sub_name:
                continue
            if targets == ALL_LINEAR:
                wanted = isinstance(sub_module, nn.Linear)
            else:
                wanted = any(sub_name == t or sub_name.endswith(f".{t}") for t in targets)
            if wanted:
                qualified.append(f"{prefix}.{sub_name}")
    return qualified


class Hybrid(TransferStrategy):
    name = "hybrid"
    default_learning_rate = 1e-4
    summary = "LoRA below the top K layers, top K layers + head in full, layer-wise decayed learning rates"

    def prepare(self, model: PreTrainedModel, context: StrategyContext) -> PreparedModel:
        args = context.args
        view, top = top_layers_view(model, args)
        names = module_names(model)
        split = len(view.layers) - top
        top_modules = unique_modules(view.layers[split:])
        top_ids = {id(m) for m in top_modules}
        lower = [m for m in unique_modules(view.layers[:split]) if id(m) not in top_ids]
        targets = lora_targets(args, view)
        lora_modules = _lower_layer_targets(lower, names, targets)
        if not lora_modules:
            raise UserInputError(
                f"hybrid with --train-top-layers {top} leaves no lower layer for LoRA in this "
                f"{view.spec.model_type} model ({len(view.layers)} layers): use --strategy full, or a smaller K."
            )
        to_save = head_module_names(model, view) + [names[id(m)] for m in top_modules]
        if top > 0 and view.pooler is not None:
            to_save.append(names[id(view.pooler)])
        peft_model = wrap_with_lora(model, lora_config(args, lora_modules, to_save), context.base_model_id)

        decay = DEFAULT_LAYER_LR_DECAY if args.layer_lr_decay is None else args.layer_lr_decay
        peft_view = architecture_view(peft_model)
        groups = layerwise_groups(peft_model, peft_view, context, decay)
        units = unfreeze_units(peft_model, peft_view) if args.gradual_unfreeze else None
        settings = {
            **lora_settings(args, targets, to_save),
            "lora_layers": len(lower),
            "train_top_layers": top,
            "layer_lr_decay": decay,
            "head_lr_multiplier": args.head_lr_multiplier,
            "gradual_unfreeze": args.gradual_unfreeze,
            "unfreeze_every_steps": args.unfreeze_every_steps,
        }
        return PreparedModel(peft_model, param_groups=groups, settings=settings, unfreeze_units=units, is_adapter=True)
