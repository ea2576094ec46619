"""`lora`: peft LoRA matrices on the attention projections, plus the task head; the encoder stays frozen.

Task type SEQ_CLS makes peft train and save the classifier (`modules_to_save`); heads it does not know
(DeBERTa's new ContextPooler, ModernBERT's head) are added from the architecture view, or they would
come back random after a reload (peft #2171).
"""

from __future__ import annotations

from peft import LoraConfig, TaskType, get_peft_model
from torch import nn
from transformers import PreTrainedModel

from nlp_transfer.config.strategy import StrategyArguments
from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.layers import ArchitectureView, architecture_view
from nlp_transfer.modeling.strategies.base import PreparedModel, StrategyContext, TransferStrategy

ALL_LINEAR = "all-linear"


def module_names(model: nn.Module) -> dict[int, str]:
    """Qualified module name by module identity."""
    return {id(module): name for name, module in model.named_modules()}


def lora_targets(args: StrategyArguments, view: ArchitectureView) -> list[str] | str:
    """--lora-target resolved: the architecture's query/value projections, 'all-linear', or the given names."""
    if args.lora_target is None:
        return list(view.spec.lora_target_modules)
    if args.lora_target == ALL_LINEAR:
        return ALL_LINEAR
    return [name.strip() for name in args.lora_target.split(",") if name.strip()]


def head_module_names(model: nn.Module, view: ArchitectureView) -> list[str]:
    names = module_names(model)
    return [names[id(module)] for module in view.head if id(module) in names]


def lora_config(args: StrategyArguments, target_modules: list[str] | str, modules_to_save: list[str]) -> LoraConfig:
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=target_modules,
        # A copy: peft extends the list in place with its SEQ_CLS defaults ("classifier", "score").
        modules_to_save=list(modules_to_save),
        use_dora=args.use_dora,
        use_rslora=args.use_rslora,
    )


def name_adapter_base(peft_model: nn.Module, base_model_id: str) -> None:
    """Record the base by its Hub id in adapter_config.json, not the training machine's local path.

    peft records wherever the base was loaded from: for the bundled MiniLM a site-packages path that is
    useless on another machine or the Hub. load_classifier resolves the Hub id back to the bundled folder.
    """
    for adapter_config in peft_model.peft_config.values():
        adapter_config.base_model_name_or_path = base_model_id


def wrap_with_lora(model: PreTrainedModel, config: LoraConfig, base_model_id: str | None) -> nn.Module:
    """get_peft_model, then name the base by `base_model_id` (peft records the local load path instead)."""
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as error:
        raise UserInputError(
            f"LoRA could not be applied: {error}. Check --lora-target (module names of this "
            f"{model.config.model_type} model, or '{ALL_LINEAR}')."
        ) from None
    if base_model_id:
        name_adapter_base(peft_model, base_model_id)
    return peft_model


def lora_settings(args: StrategyArguments, targets: list[str] | str, modules_to_save: list[str]) -> dict:
    return {
        "lora_r": args.lora_r,
        "lora_alpha": args.lora_alpha,
        "lora_dropout": args.lora_dropout,
        "target_modules": targets,
        "modules_to_save": list(dict.fromkeys(modules_to_save)),
        "use_dora": args.use_dora,
        "use_rslora": args.use_rslora,
    }


class LoRA(TransferStrategy):
    name = "lora"
    default_learning_rate = 5e-4
    summary = "peft LoRA matrices + the classification head"

    def prepare(self, model: PreTrainedModel, context: StrategyContext) -> PreparedModel:
        args = context.args
        view = architecture_view(model)
        targets = lora_targets(args, view)
        to_save = head_module_names(model, view)
        peft_model = wrap_with_lora(model, lora_config(args, targets, to_save), context.base_model_id)
        return PreparedModel(peft_model, settings=lora_settings(args, targets, to_save), is_adapter=True)
