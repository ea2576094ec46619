"""One run: checkpoint + data + strategy -> Trainer -> a complete output folder.

`fine_tune(config)` is the whole job behind `nlp-transfer train`: it resolves the checkpoint, loads and
validates the data, lets the strategy shape the model, trains with transformers' `Trainer`, keeps the
best checkpoint by the task's primary metric, and writes the model, tokenizer, `metrics.json`, the
resolved run config and a model card into the output folder, all or nothing.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    set_seed,
)

from nlp_transfer import __version__
from nlp_transfer.callbacks import GradualUnfreezeCallback
from nlp_transfer.checkpoints import Checkpoint, load_config, load_tokenizer, resolve_checkpoint
from nlp_transfer.class_weights import LossWeights, label_counts, resolve_loss_weights
from nlp_transfer.config import EvaluationArguments, RunConfig, TransferTrainingArguments
from nlp_transfer.data import LabelSchema, PreparedData, load_data, resolve_max_length, tokenize
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation import FinalEvaluation, evaluate_splits, resolve_primary_metric, write_plots
from nlp_transfer.hub import write_model_card
from nlp_transfer.metrics import (
    MetricSuite,
    PrimaryMetric,
    available_metrics,
    build_compute_metrics,
    reported_suite,
)
from nlp_transfer.metrics.thresholds import check_tunable
from nlp_transfer.outputs import (
    check_output_dir,
    discard,
    publish,
    remove_intermediates,
    staging_dir,
    staging_path,
    write_json,
)
from nlp_transfer.predict import PACKAGE_CONFIG_KEY, package_settings
from nlp_transfer.strategies import PreparedModel, StrategyContext, TransferStrategy, count_parameters, get_strategy
from nlp_transfer.verification import save_adapter_extras, verify_reload

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
RUN_CONFIG_FILE = "run_config.json"


@dataclass
class FineTuneResult:
    """Where the run's output went and what it measured."""

    output_dir: Path
    metrics: dict[str, Any]
    is_main_process: bool = True
    """False in the other processes of a distributed run, which write and report nothing."""
    push: Any = None
    """The PushResult of --push-to-hub, when asked."""

    @property
    def metrics_path(self) -> Path:
        return self.output_dir / METRICS_FILE

    @property
    def model_card_path(self) -> Path:
        return self.output_dir / "README.md"


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
        # Sequence-classification heads compute a per-batch mean loss and never use num_items_in_batch, yet
        # their forward takes **kwargs, so Trainer believes they normalise over the accumulated batch and
        # skips dividing by the accumulation steps: with accumulation N the update would be N times too large.
        # Saying they accept no loss kwargs (and, from transformers 5.19, that the loss is not scaled for
        # accumulation) restores the division, for the model's loss and the class-weighted one alike.
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.loss_weights is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.loss_weights.loss(outputs.logits, labels)
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, model=None):
        if self.param_groups is None or self.optimizer is not None:
            return super().create_optimizer(model) if model is not None else super().create_optimizer()
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
        self.optimizer = optimizer_cls(self.param_groups, **optimizer_kwargs)
        return self.optimizer


def fine_tune(config: RunConfig) -> FineTuneResult:
    """Train one classifier as `config` says and write its output folder; returns paths and metrics."""
    target = check_output_dir(config.training.given_output_dir, config.training.overwrite_output_dir)
    strategy = get_strategy(config.strategy.strategy)
    checkpoint = resolve_checkpoint(config.model.model, config.model.revision, config.model.trust_remote_code)
    logger.info("Checkpoint: %s (%s)", checkpoint.hub_id or checkpoint.source, checkpoint.source)

    data = load_data(config.data, seed=config.training.seed)
    _log_data(data)
    schema = data.schema
    counts = label_counts(schema.task, data.splits["train"]["labels"], schema.num_labels)
    primary = resolve_primary_metric(schema.task, counts, config.training.metric_for_best_model)
    logger.info("Primary metric %s: %s", primary.name, primary.reason)
    suite = _metric_suite(config.evaluation, schema, primary)
    if config.evaluation.tune_threshold:
        check_tunable(suite, primary.name)
    loss_weights = resolve_loss_weights(
        config.evaluation.class_weights, schema.task, schema.names, counts, len(data.splits["train"])
    )
    if loss_weights is not None:
        logger.info("Loss %s (%s): %s", loss_weights.kind, loss_weights.mode, loss_weights.to_dict()["weights"])
        if config.training.label_smoothing_factor:
            raise UserInputError("--class-weights and --label-smoothing-factor cannot be combined; choose one.")
    args = _resolve_training_arguments(config.training, strategy, primary, staging_path(target))
    if config.training.push_to_hub:
        from nlp_transfer.push import resolve_token

        resolve_token(config.training.hub_token)  # fail before training, not after it
    tokenizer = load_tokenizer(checkpoint)
    max_length = resolve_max_length(tokenizer, config.data.max_length)
    encoded = tokenize(data, tokenizer, max_length)

    set_seed(config.training.seed)  # the new head's initialisation depends on it
    model_config = load_config(
        checkpoint,
        num_labels=data.schema.num_labels,
        id2label=data.schema.id2label,
        label2id=data.schema.label2id,
        problem_type=data.schema.problem_type,
    )
    setattr(
        model_config,
        PACKAGE_CONFIG_KEY,
        {
            "version": __version__,
            "max_length": max_length,
            "primary_metric": primary.name,
            "label_separator": config.data.label_separator,
        },
    )
    context = StrategyContext(
        args=config.strategy,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        base_model_id=checkpoint.hub_id or checkpoint.source,
    )
    prepared = strategy.prepare(strategy.load_model(checkpoint, model_config), context)
    trainable, total = count_parameters(prepared.model)
    # Counted once, as the strategy set it up: gradual unfreezing changes requires_grad during training.
    parameter_counts = (trainable, total)
    logger.info(
        "Strategy %s: %s trainable of %s parameters (%.1f%%)",
        strategy.name,
        f"{trainable:,}",
        f"{total:,}",
        100 * trainable / total,
    )

    if args.ddp_find_unused_parameters is None:
        # Gradual unfreezing: still-frozen layers get no gradient in early steps, so DDP must expect unused
        # parameters. Otherwise every trainable parameter is used (frozen ones have requires_grad False and
        # DDP ignores them), and skipping the search for unused ones saves a graph traversal per step.
        args.ddp_find_unused_parameters = prepared.unfreeze_units is not None
    unfreeze = (
        GradualUnfreezeCallback(prepared.unfreeze_units, config.strategy.unfreeze_every_steps)
        if prepared.unfreeze_units is not None
        else None
    )
    batch = _effective_batch_size(args)
    logger.info(
        "Effective batch size %d = %d per device x %d processes x %d accumulation steps; precision %s",
        batch["total"],
        batch["per_device"],
        batch["processes"],
        batch["gradient_accumulation_steps"],
        _precision(args)["used"],
    )
    # Under `accelerate launch` every process runs this function; only the main one writes files.
    state = args.distributed_state if args.device is not None else None
    is_main = state is None or state.is_main_process
    staging = staging_dir(target) if is_main else staging_path(target)
    try:
        trainer = _build_trainer(prepared, args, encoded, tokenizer, suite, primary, unfreeze, loss_weights)
        train_output = trainer.train()
        final = evaluate_splits(trainer, encoded, suite, primary, tune=config.evaluation.tune_threshold)
        if final.thresholds is not None:
            package_settings(prepared.model)["thresholds"] = final.thresholds["values"]
        trainer.save_model(str(staging))  # writes on the main process only
        metrics = _metrics_record(
            config, strategy, prepared, parameter_counts, data, checkpoint, args, train_output.metrics
        )
        _add_evaluation(metrics, final, primary, suite, loss_weights, counts)
        metrics["max_length"] = max_length
        metrics["adapter"] = prepared.is_adapter
        if unfreeze is not None:
            metrics["strategy_settings"]["unfreeze_history"] = unfreeze.history
        if is_main:
            remove_intermediates(staging)
            if prepared.is_adapter:
                save_adapter_extras(prepared.model, staging, tokenizer, config.strategy.merge_lora)
            metrics["reload_check"] = verify_reload(prepared.model, staging, data, tokenizer, max_length)
            metrics["plots"] = write_plots(staging, final, suite)
            write_json(staging / METRICS_FILE, metrics)
            write_json(staging / RUN_CONFIG_FILE, _resolved_run_config(config, args, target))
            write_model_card(
                staging,
                metrics,
                base_model=checkpoint.hub_id,
                # A full NAMESPACE/NAME is known now; a bare NAME is resolved by the Hub at push time.
                repo_id=_card_repo_id(config.training),
                license=config.training.license,
            )
            publish(staging, target)
        if state is not None:
            state.wait_for_everyone()
    except BaseException:
        if is_main:
            discard(staging)
        raise
    result = FineTuneResult(output_dir=target, metrics=metrics, is_main_process=is_main)
    if is_main:
        logger.info("Saved the classifier to %s (%s %.4f on validation)", target, *_primary_value(metrics))
        if config.training.push_to_hub:
            result.push = _push(target, config.training)
    return result


def _card_repo_id(given: TransferTrainingArguments) -> str | None:
    name = given.hub_model_id
    return name if given.push_to_hub and name and "/" in name else None


def _push(folder: Path, given: TransferTrainingArguments) -> Any:
    """--push-to-hub: the published folder, as `nlp-transfer push` would send it."""
    from nlp_transfer.push import push_folder

    try:
        return push_folder(
            folder,
            given.hub_model_id,
            private=bool(given.hub_private_repo),
            revision=given.hub_revision,
            token=given.hub_token,
        )
    except UserInputError as error:
        raise UserInputError(
            f"{error} The trained folder is saved at {folder}; push it later with: nlp-transfer push --model "
            f"{folder} --repo-id {given.hub_model_id}"
        ) from None


def _log_data(data: PreparedData) -> None:
    schema = data.schema
    sizes = ", ".join(f"{name} {len(split):,}" for name, split in data.splits.items())
    labels = f"{schema.num_labels} labels: {', '.join(schema.names[:8])}" if schema.names else "a score"
    logger.info("Task %s with %s; rows: %s", schema.task, labels, sizes)
    for name, source in data.sources.items():
        logger.info("  %s from %s", name, source)


def _metric_suite(evaluation: EvaluationArguments, schema: LabelSchema, primary: PrimaryMetric) -> MetricSuite:
    """The reported metrics: --metrics (plus the primary one) or every shipped metric of the task."""
    names = [name.strip() for name in (evaluation.metrics or "").split(",") if name.strip()]
    shipped = available_metrics(schema.task, schema.num_labels)
    if primary.name != "loss" and primary.name not in shipped and primary.name not in names:
        raise UserInputError(
            f"--metric-for-best-model {primary.name} is not a metric of this {schema.task} task. Choose one of: "
            f"{', '.join(shipped)}, or loss; a metric from the Hub must also be named in --metrics."
        )
    return reported_suite(schema.task, list(schema.id2label.values()), names, primary.name)


def _add_evaluation(
    metrics: dict[str, Any],
    final: FinalEvaluation,
    primary: PrimaryMetric,
    suite: MetricSuite,
    loss_weights: LossWeights | None,
    counts: list[int] | None,
) -> None:
    """The evaluation part of metrics.json: why this primary metric, thresholds, weights, every split."""
    metrics["primary_metric_reason"] = primary.reason
    metrics["reported_metrics"] = suite.names
    if counts is not None:
        metrics["train_label_counts"] = dict(zip(suite.labels, counts))
    metrics["class_weights"] = loss_weights.to_dict() if loss_weights is not None else None
    metrics["decision_thresholds"] = final.thresholds
    for split, record in final.records.items():
        metrics[split] = record


def _resolve_training_arguments(
    given: TransferTrainingArguments,
    strategy: TransferStrategy,
    primary: PrimaryMetric,
    staging: Path,
) -> TransferTrainingArguments:
    """Fill what depends on the strategy and the task: learning rate, best-model metric, output folder.

    Works on a copy, before the copy's devices are set up, so the caller's config stays as given.
    """
    args = copy.deepcopy(given)
    args.output_dir = str(staging)
    if args.learning_rate is None:
        args.learning_rate = strategy.default_learning_rate
    args.metric_for_best_model, args.greater_is_better = primary.name, primary.greater_is_better
    if args.early_stopping_patience is not None:
        if args.early_stopping_patience < 1:
            raise UserInputError("--early-stopping-patience must be at least 1 evaluation.")
        if str(args.eval_strategy.value if hasattr(args.eval_strategy, "value") else args.eval_strategy) == "no":
            raise UserInputError("--early-stopping-patience needs evaluations: leave --eval-strategy at 'epoch'.")
        if not args.load_best_model_at_end:
            raise UserInputError("--early-stopping-patience needs --load-best-model-at-end (the default).")
    _check_reporting_integrations(args.report_to)
    if args.gradient_checkpointing and "use_reentrant" not in (args.gradient_checkpointing_kwargs or {}):
        # Reentrant checkpointing loses the gradients of frozen embeddings and fails under DDP
        # ("marked ready twice"); the non-reentrant kind has neither problem.
        args.gradient_checkpointing_kwargs = {**(args.gradient_checkpointing_kwargs or {}), "use_reentrant": False}
    # Trainer needs to know the label column when the model's signature does not show it (peft models).
    args.label_names = ["labels"]
    if args.push_to_hub and not args.hub_model_id:
        raise UserInputError("--push-to-hub needs --hub-model-id NAME (e.g. my-user/support-classifier).")
    # The package pushes the finished folder itself (one commit, no checkpoints); Trainer's own push would
    # upload every checkpoint as it is saved.
    args.push_to_hub = False
    return args


REPORTING_PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}


def _check_reporting_integrations(report_to: list[str] | None) -> None:
    """A clear install hint instead of Trainer's RuntimeError when a --report-to backend is missing."""
    import importlib.util

    for name in report_to or []:
        modules = REPORTING_PACKAGES.get(name)
        if modules and not any(importlib.util.find_spec(module) for module in modules):
            extra = " (or: pip install 'nlp-transfer[tensorboard]')" if name == "tensorboard" else ""
            raise UserInputError(f"--report-to {name} needs the {modules[0]} package: pip install {modules[0]}{extra}.")


def _build_trainer(
    prepared: PreparedModel,
    args: TransferTrainingArguments,
    encoded: Any,
    tokenizer: Any,
    suite: MetricSuite,
    primary: PrimaryMetric,
    unfreeze: GradualUnfreezeCallback | None,
    loss_weights: LossWeights | None,
) -> TransferTrainer:
    callbacks: list[Any] = []
    if args.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    if unfreeze is not None:
        callbacks.append(unfreeze)
    return TransferTrainer(
        model=prepared.model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=tokenizer,
        # Pads each batch to its longest text: short texts cost short sequences.
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=build_compute_metrics(suite, primary.name),
        callbacks=callbacks,
        param_groups=prepared.param_groups,
        loss_weights=loss_weights,
    )


def _metrics_record(
    config: RunConfig,
    strategy: TransferStrategy,
    prepared: PreparedModel,
    parameter_counts: tuple[int, int],
    data: PreparedData,
    checkpoint: Checkpoint,
    args: TransferTrainingArguments,
    train_metrics: dict[str, float],
) -> dict[str, Any]:
    """metrics.json without the evaluation dicts, which the caller adds under 'eval' and 'test'."""
    trainable, total = parameter_counts
    record: dict[str, Any] = {
        "task": data.schema.task,
        "strategy": strategy.name,
        "strategy_settings": {**prepared.settings, "learning_rate": args.learning_rate},
        "primary_metric": args.metric_for_best_model,
        "greater_is_better": bool(args.greater_is_better),
        "eval": {},
    }
    record.update(
        {
            "precision": _precision(args),
            "effective_batch_size": _effective_batch_size(args),
            "trainable_parameters": trainable,
            "total_parameters": total,
            "train_runtime_s": train_metrics.get("train_runtime"),
            "train_samples_per_second": train_metrics.get("train_samples_per_second"),
            "epochs": train_metrics.get("epoch", args.num_train_epochs),
            "base_model": checkpoint.hub_id or checkpoint.source,
            "hyperparameters": _hyperparameters(args),
            "labels": data.schema.names,
            "dataset": (
                {"name": config.data.dataset_name, "config": config.data.dataset_config_name}
                if config.data.dataset_name
                else None
            ),
            "num_examples": {name: len(split) for name, split in data.splits.items()},
            "data_sources": data.sources,
            "dropped_rows": data.dropped_rows,
            "nlp_transfer_version": __version__,
        }
    )
    return record


def _hyperparameters(args: TransferTrainingArguments) -> dict[str, Any]:
    """The Trainer settings a reader of the model card needs to reproduce the run."""
    batch = _effective_batch_size(args)
    return {
        "learning_rate": args.learning_rate,
        "num_train_epochs": args.num_train_epochs,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "effective_batch_size": batch["total"],
        "weight_decay": args.weight_decay,
        "warmup_steps": args.warmup_steps,
        "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "optim": str(getattr(args.optim, "value", args.optim)),
        "seed": args.seed,
        "precision": _precision(args)["used"],
    }


def _effective_batch_size(args: TransferTrainingArguments) -> dict[str, int]:
    """Examples per optimizer step: per device x processes x gradient accumulation."""
    processes = args.world_size
    return {
        "per_device": args.per_device_train_batch_size,
        "processes": processes,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "total": args.per_device_train_batch_size * processes * args.gradient_accumulation_steps,
    }


def _precision(args: TransferTrainingArguments) -> dict[str, Any]:
    used = "bf16" if args.bf16 else ("fp16" if args.fp16 else "fp32")
    return {"used": used, "asked": getattr(args, "precision_fallback", None) or used}


def _resolved_run_config(config: RunConfig, args: TransferTrainingArguments, target: Path) -> dict[str, Any]:
    resolved = copy.deepcopy(config)
    resolved.training = copy.deepcopy(args)
    resolved.training.output_dir = str(target)
    resolved.training.push_to_hub = config.training.push_to_hub  # as asked; the package does the push
    return resolved.to_dict()


def _primary_value(metrics: dict[str, Any]) -> tuple[str, float]:
    name = metrics["primary_metric"]
    value = metrics["eval"].get(name, math.nan)
    return name, value
