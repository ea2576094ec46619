"""Recipes: the batch size, learning rate, epochs and evaluation cadence a run gets when the user leaves them unset.

Three measured facts drive them (BENCHMARKS.md, "Few labels" and "Speed"):

- The right learning rate depends on the model's size. 2e-5 is a BERT-base habit (hidden size 768); the
  6-layer, 384-wide MiniLM under-trains at it and wants about 1e-4, and larger models want less (BERT-large
  1e-5..2e-5). Strategies that update pretrained weights in full (`full`, `hybrid`'s top layers, `freeze`
  with trained layers) scale their BERT-base rate by (768 / hidden size)^2, kept within [0.5x, 5x]. What
  trains only new weights (a linear probe, LoRA matrices, a random model) does not depend on that size.
- Few examples need enough optimizer updates (Mosbach et al. 2021; Zhang et al. 2021): 16 labels at batch
  8 and 5 epochs are 10 updates. Below `MIN_OPTIMIZER_STEPS` the epochs are raised until it is reached;
  then evaluations are spread to about `EVALUATIONS` over the run, the best one is kept, and early stopping
  ends a run that stopped improving (not a from-scratch run: its plateau at the majority class comes before
  it learns, and the baseline must not be cut short there).
- Where there are enough rows, a larger batch trains several times faster per example (the optimizer update
  and the per-step overhead are paid once per batch; the matrix multiplies get more rows) at the same
  accuracy: the batch grows to 16 and 32 as long as the default epochs still make `MIN_OPTIMIZER_STEPS`.

Every decision is returned with its reason; training logs them and `metrics.json` records them (`recipe`).
An option the user gave is never changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from nlp_transfer.config.checks import option_text
from nlp_transfer.config.strategy import StrategyArguments
from nlp_transfer.config.training import TransferTrainingArguments
from nlp_transfer.evaluation.record import EffectiveBatchSize

REFERENCE_HIDDEN_SIZE = 768
"""The size the strategies' base learning rates are for (BERT-base)."""
SIZE_FACTOR_RANGE = (0.5, 5.0)
PROBE_LEARNING_RATE = 1e-3
"""A linear probe trains one new layer on frozen features: a rate for new weights, whatever the encoder."""
DEFAULT_EPOCHS = 5
MIN_OPTIMIZER_STEPS = 200
MAX_EPOCHS = 100
BATCH_SIZES = (32, 16, 8)
"""Default training batches per device, largest first (see `batch_size`)."""
EVALUATIONS = 10
"""Evaluations over a run whose epochs were raised (each is also a checkpoint of the best model)."""
EARLY_STOPPING_PATIENCE = 4
"""Evaluations without improvement before a raised run stops."""
NOT_EARLY_STOPPED = "scratch"
"""The baseline runs its raised epochs to the end (see `_choose_epochs`)."""
# Strategies whose pretrained weights train in full at the strategy's rate.
SIZE_SCALED_STRATEGIES = ("full", "hybrid", "freeze")


@dataclass(frozen=True)
class Decision:
    """One option the package chose, and why."""

    value: Any
    reason: str


@dataclass
class Recipe:
    """The decisions taken for one run, by option name (`learning_rate`, `num_train_epochs`, ...)."""

    decisions: dict[str, Decision] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: {"value": d.value, "reason": d.reason} for name, d in self.decisions.items()}


def effective_batch_size(args: TransferTrainingArguments) -> EffectiveBatchSize:
    """Examples per optimizer step: per device x processes x gradient accumulation."""
    processes = args.world_size
    return EffectiveBatchSize(
        per_device=args.per_device_train_batch_size,
        processes=processes,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        total=args.per_device_train_batch_size * processes * args.gradient_accumulation_steps,
    )


def size_factor(hidden_size: int) -> float:
    """(768 / hidden)^2 within SIZE_FACTOR_RANGE: 384 -> 4, 768 -> 1, 1024 -> 0.56."""
    low, high = SIZE_FACTOR_RANGE
    return min(high, max(low, (REFERENCE_HIDDEN_SIZE / hidden_size) ** 2))


def batch_size(train_rows: int, multiplier: int = 1) -> Decision:
    """The largest of BATCH_SIZES per device that still gives DEFAULT_EPOCHS at least MIN_OPTIMIZER_STEPS updates.

    `multiplier` is processes x gradient accumulation (examples per update = per device x multiplier). A larger
    batch keeps the machine's matrix multiplies busy and spreads each step's fixed cost (the optimizer update,
    Python) over more examples; few labels need the updates more (see the module docstring).
    """
    for size in BATCH_SIZES:
        steps = math.ceil(train_rows / (size * multiplier)) * DEFAULT_EPOCHS
        if steps >= MIN_OPTIMIZER_STEPS:
            break
    if size == BATCH_SIZES[0]:
        reason = f"{train_rows} training rows at batch {size} still give {DEFAULT_EPOCHS} epochs {steps} updates"
    elif size == BATCH_SIZES[-1]:
        reason = f"{train_rows} training rows: few enough that every update counts (the smallest default batch)"
    else:
        reason = (
            f"{train_rows} training rows: the largest batch whose {DEFAULT_EPOCHS} epochs still make at least "
            f"{MIN_OPTIMIZER_STEPS} updates ({steps})"
        )
    return Decision(size, reason)


def learning_rate(strategy: str, base_rate: float, hidden_size: int, options: StrategyArguments) -> Decision:
    """The default peak learning rate of `strategy` for a model of `hidden_size`."""
    if strategy == "freeze" and options.train_top_layers == 0 and not options.train_embeddings:
        return Decision(PROBE_LEARNING_RATE, "a linear probe trains only the new head: the rate for new weights")
    if strategy not in SIZE_SCALED_STRATEGIES:
        return Decision(base_rate, f"{strategy}'s rate (it trains new weights; the model's size does not change it)")
    factor = size_factor(hidden_size)
    rate = float(f"{base_rate * factor:.3g}")
    return Decision(
        rate,
        f"{strategy}'s BERT-base rate {base_rate:g} x {factor:.3g} for hidden size {hidden_size} "
        f"((768 / {hidden_size})^2, within {SIZE_FACTOR_RANGE[0]}..{SIZE_FACTOR_RANGE[1]}x)",
    )


def apply_recipe(
    args: TransferTrainingArguments,
    strategy: str,
    base_rate: float,
    hidden_size: int,
    options: StrategyArguments,
    train_rows: int,
) -> Recipe:
    """Fill the run's unset options (`args` is the run's own copy) and return what was decided, and why."""
    recipe = Recipe()
    if args.per_device_train_batch_size is None:
        decision = batch_size(train_rows, args.world_size * args.gradient_accumulation_steps)
        args.per_device_train_batch_size = decision.value
        recipe.decisions["per_device_train_batch_size"] = decision
    if getattr(args, "dataloader_reason", None):
        recipe.decisions["dataloader_num_workers"] = Decision(args.dataloader_num_workers, args.dataloader_reason)
    if args.learning_rate is None:
        decision = learning_rate(strategy, base_rate, hidden_size, options)
        args.learning_rate = decision.value
        recipe.decisions["learning_rate"] = decision
    if args.num_train_epochs is None and args.max_steps <= 0:
        _choose_epochs(args, train_rows, recipe, strategy)
    elif args.num_train_epochs is None:
        # Trainer ignores the epochs under max_steps but still compares them with 0 (a None fails there); the
        # passes max_steps makes over the data are what the record should say.
        steps_per_epoch = max(1, math.ceil(train_rows / effective_batch_size(args).total))
        args.num_train_epochs = float(math.ceil(args.max_steps / steps_per_epoch))
    return recipe


def _choose_epochs(args: TransferTrainingArguments, train_rows: int, recipe: Recipe, strategy: str) -> None:
    batch = effective_batch_size(args).total
    steps_per_epoch = max(1, math.ceil(train_rows / batch))
    if steps_per_epoch * DEFAULT_EPOCHS >= MIN_OPTIMIZER_STEPS:
        args.num_train_epochs = DEFAULT_EPOCHS
        recipe.decisions["num_train_epochs"] = Decision(
            DEFAULT_EPOCHS,
            f"{DEFAULT_EPOCHS} epochs give {steps_per_epoch * DEFAULT_EPOCHS} optimizer steps "
            f"(at least {MIN_OPTIMIZER_STEPS})",
        )
        return
    epochs = min(MAX_EPOCHS, math.ceil(MIN_OPTIMIZER_STEPS / steps_per_epoch))
    args.num_train_epochs = epochs
    recipe.decisions["num_train_epochs"] = Decision(
        epochs,
        f"{train_rows} training rows at batch {batch} are {steps_per_epoch} optimizer steps per epoch: "
        f"{DEFAULT_EPOCHS} epochs would be {steps_per_epoch * DEFAULT_EPOCHS} updates, too few to fine-tune "
        f"stably; raised to {epochs * steps_per_epoch} (at least {MIN_OPTIMIZER_STEPS}, at most {MAX_EPOCHS} epochs)",
    )
    _spread_evaluations(args, epochs, steps_per_epoch, recipe)
    if args.early_stopping_patience is None and _evaluates(args) and strategy == NOT_EARLY_STOPPED:
        recipe.decisions["early_stopping_patience"] = Decision(
            None,
            "none for scratch: a model from random weights often predicts the majority class for several "
            "evaluations before it starts to learn, and stopping there would understate what training from "
            "scratch reaches (the best evaluation is still kept)",
        )
    elif args.early_stopping_patience is None and _evaluates(args):
        args.early_stopping_patience = EARLY_STOPPING_PATIENCE
        recipe.decisions["early_stopping_patience"] = Decision(
            EARLY_STOPPING_PATIENCE,
            f"epochs were raised: stop after {EARLY_STOPPING_PATIENCE} evaluations without improvement "
            "(the best evaluation is kept)",
        )


def _spread_evaluations(args: TransferTrainingArguments, epochs: int, steps_per_epoch: int, recipe: Recipe) -> None:
    """Per-epoch evaluation of a raised run becomes about EVALUATIONS evaluations (and checkpoints)."""
    if not (option_text(args.eval_strategy) == option_text(args.save_strategy) == "epoch") or epochs <= EVALUATIONS:
        return
    every = math.ceil(epochs / EVALUATIONS) * steps_per_epoch
    args.eval_strategy, args.save_strategy = IntervalStrategy.STEPS, SaveStrategy.STEPS
    args.eval_steps = args.save_steps = every
    recipe.decisions["eval_steps"] = Decision(
        every,
        f"evaluate and checkpoint every {every} steps, about {EVALUATIONS} times over the run, "
        f"not after each of {epochs} epochs",
    )


def _evaluates(args: TransferTrainingArguments) -> bool:
    return option_text(args.eval_strategy) != "no" and bool(args.load_best_model_at_end)
