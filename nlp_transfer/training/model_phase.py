"""Phase 3 of a run, `build_model`: the checkpoint with a head for the run's labels (pooling, head init), the
package's recipe applied to the run's arguments, and the model shaped by the strategy (`RunModel`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from transformers import set_seed

from nlp_transfer.modeling.checkpoints import load_config
from nlp_transfer.modeling.head_init import HeadInit, initialise_head, resolve_head_init
from nlp_transfer.modeling.heads import PoolingChoice, classification_config, resolve_pooling
from nlp_transfer.modeling.strategies import PreparedModel, StrategyContext, count_parameters
from nlp_transfer.settings import PackageSettings
from nlp_transfer.training.callbacks import GradualUnfreezeCallback
from nlp_transfer.training.data_phase import RunData, _chunk_settings
from nlp_transfer.training.plan import RunPlan
from nlp_transfer.training.recipes import Recipe, apply_recipe
from nlp_transfer.training.resume import check_resume_batch

logger = logging.getLogger(__name__)


@dataclass
class RunModel:
    """Phase 3: the model as the strategy prepared it, its parameter counts and the package's settings."""

    prepared: PreparedModel
    parameter_counts: tuple[int, int]
    settings: PackageSettings
    unfreeze: GradualUnfreezeCallback | None
    pooling: PoolingChoice
    head_init: HeadInit
    recipe: Recipe
    """The options the package chose (learning rate, epochs, ...), applied to the run's arguments."""


def build_model(plan: RunPlan, run_data: RunData) -> RunModel:
    """The checkpoint with a head for these labels, shaped by the strategy (frozen parts, LoRA, groups)."""
    config, schema = plan.config, run_data.data.schema
    set_seed(config.training.seed)  # the new head's initialisation depends on it
    model_config = load_config(
        plan.checkpoint,
        num_labels=schema.num_labels,
        id2label=schema.id2label,
        label2id=schema.label2id,
        problem_type=schema.problem_type,
    )
    recipe = apply_recipe(
        plan.args,
        plan.strategy.name,
        plan.strategy.default_learning_rate,
        model_config.hidden_size,
        config.strategy,
        len(run_data.encoded["train"]),
    )
    for name, decision in recipe.decisions.items():
        logger.info("Recipe: %s = %s (%s)", name, decision.value, decision.reason)
    if plan.resume_from is not None:
        check_resume_batch(plan.resume_from.checkpoint, plan.args.train_batch_size)
    pooling = resolve_pooling(config.model.pooling, plan.checkpoint, model_config)
    logger.info("Pooling %s: %s", pooling.mode, pooling.reason)
    model_config = classification_config(model_config, pooling)
    settings = PackageSettings(
        max_length=run_data.max_length,
        long_text=config.data.long_text,
        **_chunk_settings(config.data),
        primary_metric=run_data.primary.name,
        label_separator=config.data.label_separator,
    )
    settings.write(model_config)
    context = StrategyContext(
        args=config.strategy,
        learning_rate=plan.args.learning_rate,
        weight_decay=plan.args.weight_decay,
        base_model_id=plan.checkpoint.hub_id or plan.checkpoint.source,
    )
    model = plan.strategy.load_model(plan.checkpoint, model_config)
    head_init = _initialise_head(plan, run_data, pooling, model)
    prepared = plan.strategy.prepare(model, context)
    # Counted once, as the strategy set it up: gradual unfreezing changes requires_grad during training.
    trainable, total = count_parameters(prepared.model)
    logger.info(
        "Strategy %s: %s trainable of %s parameters (%.1f%%)",
        plan.strategy.name,
        f"{trainable:,}",
        f"{total:,}",
        100 * trainable / total,
    )
    unfreeze = (
        GradualUnfreezeCallback(prepared.unfreeze_units, config.strategy.unfreeze_every_steps)
        if prepared.unfreeze_units is not None
        else None
    )
    return RunModel(prepared, (trainable, total), settings, unfreeze, pooling, head_init, recipe)


def _initialise_head(plan: RunPlan, run_data: RunData, pooling: PoolingChoice, model: Any) -> HeadInit:
    """The head as --head-init says: left as built, or fitted as a probe on the frozen encoder (LP-FT)."""
    head_init = resolve_head_init(plan.config.model.head_init, pooling, plan.strategy.name)
    if head_init.method == "probe":
        head_init = initialise_head(
            model, run_data.encoded["train"], run_data.tokenizer, run_data.data.schema.task, head_init.reason
        )
    logger.info(
        "Head init %s: %s%s",
        head_init.method,
        head_init.reason,
        "" if head_init.probe_train_score is None else f" (the probe alone: {head_init.probe_train_score} on train)",
    )
    return head_init
