"""transformers' Trainer as this package uses it: the strategy's parameter groups, weighted losses, its arguments.

`run_arguments` turns the user's TrainingArguments into the run's own copy (learning rate of the strategy,
output into the staging folder, the package pushing instead of Trainer); `build_trainer` assembles the
Trainer; `effective_batch_size`, `precision` and `hyperparameters` are what the run record says about them.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import Sampler
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PredictionOutput

from nlp_transfer.config.checks import option_text
from nlp_transfer.config.training import TransferTrainingArguments
from nlp_transfer.data.columns import column_values
from nlp_transfer.data.tokenize import longest_first
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.documents import DOCUMENT
from nlp_transfer.evaluation.metrics import MetricSuite, PrimaryMetric, TrainerMetrics
from nlp_transfer.evaluation.record import Hyperparameters, Precision, TrainingCost
from nlp_transfer.modeling.flops import TokenCounts, training_flops
from nlp_transfer.training.class_weights import LossWeights
from nlp_transfer.training.recipes import effective_batch_size


class TransferTrainer(Trainer):
    """Trainer that takes the strategy's optimizer parameter groups, and weights the loss when asked.

    Trainer has no per-layer learning rates (transformers #10140); strategies that need them hand their
    groups here, and the optimizer class and its settings still come from TrainingArguments (`--optim`).
    The models' own losses take no class weights, so with `loss_weights` the loss is computed here.
    """

    def __init__(
        self,
        *args: Any,
        param_groups: list[dict[str, Any]] | None = None,
        loss_weights: LossWeights | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.param_groups = param_groups
        self.loss_weights = loss_weights
        self.cost = TrainingCost()
        """The loop's time in evaluations and checkpoint saves (the batches' counts come from `batches`)."""
        self.batches = BatchCounts()
        # Sequence-classification heads compute a per-batch mean loss and never use num_items_in_batch, yet
        # their forward takes **kwargs, so Trainer believes they normalise over the accumulated batch and
        # skips dividing by the accumulation steps: with accumulation N the update would be N times too large.
        # Saying they accept no loss kwargs (and, from transformers 5.19, that the loss is not scaled for
        # accumulation) restores the division, for the model's loss and the class-weighted one alike.
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if DOCUMENT in inputs:  # a chunk row's document id is for evaluation (a label name), not for the model
            inputs = {name: value for name, value in inputs.items() if name != DOCUMENT}
        if self.loss_weights is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.loss_weights.loss(outputs.logits, labels)
        return (loss, outputs) if return_outputs else loss

    def _determine_best_metric(self, metrics: dict[str, float], trial: Any) -> bool:
        """Trainer's choice of the best evaluation, with ties going to the later one.

        Trainer keeps the first evaluation that reaches the best value. On the few rows of validation a small
        training set leaves (7 of 64 labels), accuracy saturates early and ties are the rule: the earliest tie
        is the least trained model with that score. A tie with more training behind it is kept instead.
        """
        if super()._determine_best_metric(metrics, trial):
            return True
        name = self.args.metric_for_best_model or ""
        value = metrics.get(name if name.startswith("eval_") else f"eval_{name}")
        if value is None or self.state.best_metric is None or value != self.state.best_metric:
            return False
        self.state.best_global_step = self.state.global_step
        return True

    def training_step(self, model, inputs, num_items_in_batch=None):
        if inputs.get("attention_mask") is not None:
            self.batches.add(self.model, inputs["attention_mask"])
        return super().training_step(model, inputs, num_items_in_batch)

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        started = time.perf_counter()
        try:
            return super().evaluate(*args, **kwargs)
        finally:  # only the loop evaluates: the final scores come from predict()
            self.cost.evaluation_s += time.perf_counter() - started
            self.cost.evaluations += 1

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        started = time.perf_counter()
        super()._save_checkpoint(model, trial)
        self.cost.checkpoint_s += time.perf_counter() - started
        self.cost.checkpoints += 1

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        """Length-grouped batches in an order drawn from (seed + epoch), so a resumed run replays its epoch.

        Trainer's own LengthGroupedSampler draws from torch's global random state when an epoch starts, and a
        resumed run restores that state only after the resumed epoch has drawn its order: from the second
        epoch on, the batches it skips would not be the ones the interrupted run trained.
        """
        dataset = self.train_dataset if train_dataset is None else train_dataset
        strategy = option_text(self.args.train_sampling_strategy)
        if strategy != "group_by_length" or not isinstance(dataset, Dataset) or "input_ids" not in dataset.column_names:
            return super()._get_train_sampler(train_dataset)
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        lengths = [len(ids) for ids in column_values(dataset, "input_ids")]  # a column read, not a row loop
        return SeededLengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths, seed
        )

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        """Evaluation rows longest first, so batches pad little; `predict` puts its rows back in order."""
        order = self._length_order(eval_dataset)
        return super()._get_eval_sampler(eval_dataset) if order is None else InOrder(order)

    def predict(self, test_dataset: Any, ignore_keys: Any = None, metric_key_prefix: str = "test") -> PredictionOutput:
        output = super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        order = self._length_order(test_dataset)
        if order is None:
            return output
        restore = np.argsort(order)
        return PredictionOutput(
            _reordered(output.predictions, restore), _reordered(output.label_ids, restore), output.metrics
        )

    def _length_order(self, dataset: Any) -> np.ndarray | None:
        """Longest-first row order of a tokenized dataset; None where Trainer's own order must stay (several
        processes shard the rows in order, and gather them back in that order)."""
        if self.args.world_size > 1 or not isinstance(dataset, Dataset) or "input_ids" not in dataset.column_names:
            return None
        if self.args.dataloader_drop_last or not self.args.eval_do_concat_batches:
            return None  # fewer rows than the dataset, or predictions per batch: nothing to put back row by row
        return longest_first([len(ids) for ids in column_values(dataset, "input_ids")])

    def create_optimizer(self, model=None):
        if self.param_groups is None or self.optimizer is not None:
            return super().create_optimizer(model) if model is not None else super().create_optimizer()
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
        self.optimizer = optimizer_cls(self.param_groups, **optimizer_kwargs)
        return self.optimizer


class BatchCounts:
    """This process's training batches: sequences, real and padded tokens, and their FLOPs.

    Kept as tensors on the batches' device, so counting never makes the CPU wait for the GPU, and grouped by
    which parameters trained (gradual unfreezing changes the FLOPs of a token). FLOPs are linear in tokens,
    sequences and squared lengths (nlp_transfer.modeling.flops), so each state's three rates are computed once.
    """

    def __init__(self) -> None:
        self.states: dict[tuple[bool, ...], dict[str, Any]] = {}

    def add(self, model: Any, mask: torch.Tensor) -> None:
        key = tuple(parameter.requires_grad for parameter in model.parameters())
        if key not in self.states:
            self.states[key] = {"rates": _flop_rates(model), "sequences": 0, "padded": 0, "sums": 0}
        state = self.states[key]
        lengths = mask.sum(dim=1)
        state["sequences"] += mask.shape[0]
        state["padded"] += mask.numel()
        state["sums"] = state["sums"] + torch.stack([lengths.sum(), (lengths * lengths).sum()])

    def totals(self) -> dict[str, float]:
        """{sequences, real_tokens, padded_tokens, flops} over every batch so far (reads the device once)."""
        totals = {"sequences": 0, "real_tokens": 0, "padded_tokens": 0, "flops": 0.0}
        for state in self.states.values():
            tokens, squared = (int(value) for value in state["sums"].tolist())
            per_sequence, per_token, per_squared = state["rates"]
            totals["sequences"] += state["sequences"]
            totals["real_tokens"] += tokens
            totals["padded_tokens"] += state["padded"]
            totals["flops"] += per_sequence * state["sequences"] + per_token * tokens + per_squared * squared
        return totals


def _flop_rates(model: Any) -> tuple[float, float, float]:
    """FLOPs of a training step per sequence, per real token and per squared length, as the model trains now."""
    return tuple(training_flops(model, TokenCounts(*unit)).total for unit in ((1, 0, 0), (0, 1, 0), (0, 0, 1)))


class SeededLengthGroupedSampler(LengthGroupedSampler):
    """transformers' length-grouped order (shuffled, sorted by length within groups of batches), drawn from its
    own generator seeded with seed + epoch: Trainer calls `set_epoch` before every epoch."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed + int(epoch))


class InOrder(Sampler[int]):
    """The rows of a dataset in a given order (torch's SequentialSampler only goes 0..n-1)."""

    def __init__(self, order: np.ndarray) -> None:
        self.order = [int(i) for i in order]

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def _reordered(values: Any, rows: np.ndarray) -> Any:
    """Predictions or labels (an array, or a tuple of them) with their rows taken in the order `rows`."""
    if values is None:
        return None
    if isinstance(values, (tuple, list)):
        return type(values)(_reordered(value, rows) for value in values)
    return values[rows]


class PrimaryMetricCheck(TrainerCallback):
    """Refuses an evaluation during training whose primary metric is undefined: no checkpoint could be compared.

    `TrainerMetrics` leaves undefined values out (the final splits report them); Trainer would then fail with
    a KeyError when it looks for the best checkpoint. This check runs first (on_evaluate, before the save).
    """

    def __init__(self, metrics: TrainerMetrics, primary: str) -> None:
        self.metrics = metrics
        self.primary = primary

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.primary != "loss" and f"eval_{self.primary}" not in (metrics or {}):
            reason = self.metrics.undefined.get(self.primary, "no value was computed")
            raise UserInputError(
                f"The primary metric {self.primary} is undefined on the validation set: {reason}. "
                "Choose another --metric-for-best-model, or give a larger validation set."
            )
        return control


def run_arguments(given: TransferTrainingArguments, staging: Path) -> TransferTrainingArguments:
    """The run's own copy of the training arguments, with the package's fixed choices.

    Works on a copy, before the copy's devices are set up, so the caller's config stays as given. The
    learning rate and epochs left unset are chosen by `recipes.apply_recipe` once the model and the data are
    known; the best-model metric by `set_primary_metric` once the task is.
    """
    args = copy.deepcopy(given)
    args.output_dir = str(staging)
    if args.gradient_checkpointing and "use_reentrant" not in (args.gradient_checkpointing_kwargs or {}):
        # Reentrant checkpointing loses the gradients of frozen embeddings and fails under DDP
        # ("marked ready twice"); the non-reentrant kind has neither problem.
        args.gradient_checkpointing_kwargs = {**(args.gradient_checkpointing_kwargs or {}), "use_reentrant": False}
    # Trainer needs to know the label column when the model's signature does not show it (peft models).
    args.label_names = ["labels"]
    # The package pushes the finished folder itself (one commit, no checkpoints); Trainer's own push would
    # upload every checkpoint as it is saved.
    args.push_to_hub = False
    # Trainer pickles its arguments into every checkpoint (training_args.bin), which a kill leaves behind: the
    # run's copy holds no token. The push uses the token of the caller's config, after training.
    args.hub_token = None
    # A resumed run continues early stopping where it was (Trainer restores callback states only when asked).
    args.restore_callback_states_from_checkpoint = True
    return args


def set_primary_metric(args: TransferTrainingArguments, primary: PrimaryMetric) -> None:
    """The metric that picks the best checkpoint (and drives early stopping), known once the labels are read."""
    args.metric_for_best_model, args.greater_is_better = primary.name, primary.greater_is_better


def build_trainer(
    model: Any,
    args: TransferTrainingArguments,
    encoded: Any,
    tokenizer: Any,
    suite: MetricSuite,
    primary: PrimaryMetric,
    param_groups: list[dict[str, Any]] | None,
    loss_weights: LossWeights | None,
    extra_callbacks: list[Any],
    chunk_aggregate: str = "mean",
) -> TransferTrainer:
    if DOCUMENT in encoded["train"].column_names:
        # Chunk rows: Trainer gathers each row's document id beside its label (across processes too), and the
        # metrics put a document's chunks back together (chunk_aggregate) before scoring.
        args.label_names = ["labels", DOCUMENT]
    compute_metrics = TrainerMetrics(suite, chunk_aggregate)
    callbacks = [PrimaryMetricCheck(compute_metrics, primary.name), *extra_callbacks]
    if args.early_stopping_patience is not None:
        callbacks.insert(1, EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    return TransferTrainer(
        model=model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=tokenizer,
        # Pads each batch to its longest text: short texts cost short sequences.
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        param_groups=param_groups,
        loss_weights=loss_weights,
    )


def precision(args: TransferTrainingArguments) -> Precision:
    used = "bf16" if args.bf16 else ("fp16" if args.fp16 else "fp32")
    return Precision(
        used=used,
        asked=getattr(args, "precision_fallback", None) or used,
        reason=getattr(args, "precision_reason", None),
    )


def hyperparameters(args: TransferTrainingArguments) -> Hyperparameters:
    """The Trainer settings a reader of the model card needs to reproduce the run."""
    return Hyperparameters(
        learning_rate=args.learning_rate,
        num_train_epochs=args.num_train_epochs,
        per_device_train_batch_size=args.per_device_train_batch_size,
        effective_batch_size=effective_batch_size(args).total,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        lr_scheduler_type=option_text(args.lr_scheduler_type),
        optim=option_text(args.optim),
        seed=args.seed,
        precision=precision(args).used,
        train_sampling_strategy=option_text(args.train_sampling_strategy),
        dataloader_num_workers=args.dataloader_num_workers,
    )
