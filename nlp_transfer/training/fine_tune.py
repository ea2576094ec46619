"""One run: checkpoint + data + strategy -> Trainer -> a complete output folder, as a list of phases.

`fine_tune(config)` is the whole job behind `nlp-transfer train`. Each phase is a short function that
hands a small dataclass to the next:

    plan      options checked, output folder, strategy and checkpoint resolved (no data, no weights)
    data      read, validated, labels encoded, primary metric chosen, tokenized
    model     config with labels, the strategy applied to the pretrained (or random) model
    train     transformers' Trainer, best checkpoint kept by the primary metric
    evaluate  validation (and test) scored with the metric suite; thresholds tuned when asked
    write     the staging folder: model, tokenizer, record (metrics.json), run config, card, plots; reload check
    publish   the staging folder renamed into place (all or nothing); --push-to-hub
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from transformers import set_seed

from nlp_transfer.config.arguments import (
    EvaluationArguments,
    LongTextMode,
    RunConfig,
    TransferTrainingArguments,
    option_text,
)
from nlp_transfer.data.dataset import (
    EVAL_FILE_PREFIX,
    LabelSchema,
    PreparedData,
    column_values,
    load_data,
    resolve_max_length,
    tokenize,
)
from nlp_transfer.data.long_text import length_report, token_lengths, truncation_advice
from nlp_transfer.errors import TrainingInterrupted, UserInputError
from nlp_transfer.evaluation.calibration import fold_temperature, probe_batch
from nlp_transfer.evaluation.metrics import (
    MetricSuite,
    PrimaryMetric,
    available_metrics,
    reported_suite,
    resolve_primary_metric,
)
from nlp_transfer.evaluation.metrics.thresholds import check_tunable
from nlp_transfer.evaluation.record import HubDataset, RunRecord, TrainingCost
from nlp_transfer.folder_lock import folder_lock
from nlp_transfer.hub.card import write_model_card
from nlp_transfer.hub.push import check_hub_access, push_folder
from nlp_transfer.modeling.checkpoints import (
    Checkpoint,
    check_checkpoint_files,
    load_config,
    load_tokenizer,
    resolve_checkpoint,
)
from nlp_transfer.modeling.head_init import HeadInit, initialise_head, resolve_head_init
from nlp_transfer.modeling.heads import PoolingChoice, classification_config, resolve_pooling
from nlp_transfer.modeling.strategies import (
    PreparedModel,
    StrategyContext,
    TransferStrategy,
    count_parameters,
    get_strategy,
)
from nlp_transfer.outputs import (
    CARD_FILE,
    METRICS_FILE,
    RUN_CONFIG_FILE,
    check_output_dir,
    discard,
    publish,
    staging_dir,
    staging_path,
    write_json,
)
from nlp_transfer.settings import PackageSettings
from nlp_transfer.training.callbacks import GradualUnfreezeCallback
from nlp_transfer.training.class_weights import LossWeights, label_counts, resolve_loss_weights
from nlp_transfer.training.final_evaluation import FinalEvaluation, evaluate_splits, extra_splits, write_plots
from nlp_transfer.training.recipes import Recipe, apply_recipe, effective_batch_size
from nlp_transfer.training.resume import (
    ResumePoint,
    StopOnSignal,
    check_resume_batch,
    checkpoint_step,
    interrupted_message,
    latest_checkpoint,
    resolve_resume,
    stop_on_signals,
)
from nlp_transfer.training.saving import save_model
from nlp_transfer.training.trainer import (
    TransferTrainer,
    build_trainer,
    hyperparameters,
    precision,
    run_arguments,
    set_primary_metric,
)
from nlp_transfer.training.verification import verify_reload
from nlp_transfer.version import __version__

logger = logging.getLogger(__name__)


@dataclass
class FineTuneResult:
    """Where the run's output went and what it measured."""

    output_dir: Path
    record: RunRecord
    is_main_process: bool = True
    """False in the other processes of a distributed run, which write and report nothing."""
    push: Any = None
    """The PushResult of --push-to-hub, when asked."""

    @property
    def metrics(self) -> dict[str, Any]:
        """The record as metrics.json holds it (plain JSON values)."""
        return self.record.to_dict()

    @property
    def metrics_path(self) -> Path:
        return self.output_dir / METRICS_FILE

    @property
    def model_card_path(self) -> Path:
        return self.output_dir / CARD_FILE


# ------------------------------------------------------------------------------------------ the phases


@dataclass
class RunPlan:
    """Phase 1: the checked options, where the output goes, the strategy and the checkpoint (not loaded)."""

    config: RunConfig
    target: Path
    strategy: TransferStrategy
    checkpoint: Checkpoint
    args: TransferTrainingArguments
    """The run's own copy of the training arguments (learning rate resolved, output into staging)."""
    resume_from: ResumePoint | None = None
    """The checkpoint of an interrupted run this one continues from (--resume, --resume-from-checkpoint)."""
    lock: ExitStack = field(default_factory=ExitStack)
    """Holds the output folder's lock (main process) until the folder is published or the run fails."""


@dataclass
class RunData:
    """Phase 2: the validated data, tokenized, and what the labels decide (primary metric, suite, weights)."""

    data: PreparedData
    tokenizer: Any
    max_length: int
    encoded: Any
    primary: PrimaryMetric
    suite: MetricSuite
    label_counts: list[int] | None
    loss_weights: LossWeights | None
    text_lengths: dict[str, Any] | None = None
    """How long the texts were and how they were cut (`text_lengths`): metrics.json's `long_text`."""


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


@dataclass
class TrainedModel:
    """Phase 4: the Trainer holding the best model, and Trainer's training figures."""

    trainer: TransferTrainer
    train_metrics: dict[str, float]


def fine_tune(config: RunConfig) -> FineTuneResult:
    """Train one classifier as `config` says and write its output folder; returns paths and the run record."""
    plan = plan_run(config)
    with plan.lock:
        run_data = read_data(plan)
        run_model = build_model(plan, run_data)
        with _staged(plan) as (staging, is_main):
            trained = train(plan, run_data, run_model)
            final = evaluate(plan, run_data, trained)
            record = write_folder(plan, run_data, run_model, trained, final, staging, is_main)
            if is_main:
                publish(staging, plan.target, overwrite=plan.config.training.overwrite_output_dir)
    return finish(plan, record, is_main)


def plan_run(config: RunConfig) -> RunPlan:
    """Everything that needs no data and no weights, so that a bad option costs nothing."""
    config.validate()
    given = config.training
    if given.resume and given.given_output_dir and not given.overwrite_output_dir:
        finished = Path(given.given_output_dir).expanduser()
        if finished.is_dir() and any(finished.iterdir()):
            raise UserInputError(
                f"--resume: {finished} already holds a finished run, so there is nothing to resume. Choose a new "
                "--output-dir, or add --overwrite-output-dir to train again (the old folder is replaced at the end)."
            )
    target = check_output_dir(given.given_output_dir, given.overwrite_output_dir, inputs=config.input_paths())
    strategy = get_strategy(config.strategy.strategy)
    if config.training.push_to_hub:
        check_hub_access(given.hub_token, given.hub_model_id, target)  # fail before training, not after it
    checkpoint = resolve_checkpoint(config.model.model, config.model.revision, config.model.trust_remote_code)
    check_checkpoint_files(checkpoint, weights=strategy.name != "scratch")  # tokenizer files, readable weights
    logger.info("Checkpoint: %s (%s)", checkpoint.hub_id or checkpoint.source, checkpoint.source)
    args = run_arguments(config.training, staging_path(target))
    lock = ExitStack()  # the main process holds the folder's lock from here to the published folder
    if _is_main_process(args):
        lock.enter_context(folder_lock(target))
    try:
        resume_from = resolve_resume(
            given.resume, given.resume_from_checkpoint, staging_path(target), args.save_only_model
        )
    except BaseException:
        lock.close()
        raise
    if resume_from is not None:
        logger.info("Resuming from %s", resume_from.checkpoint)
    return RunPlan(config, target, strategy, checkpoint, args, resume_from, lock)


def read_data(plan: RunPlan) -> RunData:
    """Read and validate the data, choose the primary metric from its labels, and tokenize it."""
    config = plan.config
    data = load_data(config.data, seed=config.training.seed)
    _log_data(data)
    schema = data.schema
    counts = label_counts(schema.task, data.splits["train"]["labels"], schema.num_labels)
    primary = resolve_primary_metric(schema.task, counts, config.training.metric_for_best_model)
    logger.info("Primary metric %s: %s", primary.name, primary.reason)
    suite = _metric_suite(config.evaluation, schema, primary, config.model.trust_remote_code)
    if config.evaluation.tune_threshold:
        check_tunable(suite, primary.name)
    loss_weights = resolve_loss_weights(
        config.evaluation.class_weights, schema.task, schema.names, counts, len(data.splits["train"])
    )
    if loss_weights is not None:
        logger.info("Loss %s (%s): %s", loss_weights.kind, loss_weights.mode, loss_weights.to_dict()["weights"])
    tokenizer = load_tokenizer(plan.checkpoint)
    max_length = resolve_max_length(tokenizer, config.data.max_length)
    encoded = tokenize(data, tokenizer, max_length, config.data.long_text, config.data.chunk_stride)
    lengths = text_lengths(data, tokenizer, max_length, config.data.long_text)
    if config.data.long_text == "chunk":
        for name, report in lengths["splits"].items():
            report["chunks"] = len(encoded[name])
            logger.info("Chunks of %s: %d windows from %d texts", name, report["chunks"], report["documents"])
        lengths.update(_chunk_settings(config.data))
    return RunData(data, tokenizer, max_length, encoded, primary, suite, counts, loss_weights, lengths)


def text_lengths(data: PreparedData, tokenizer: Any, max_length: int, long_text: str) -> dict[str, Any]:
    """Each split's token lengths and share of texts longer than `max_length`, logged; advice when many are cut.

    metrics.json keeps it (`long_text`): how much of the data the model never read is part of its result.
    """
    splits = {}
    for name, split in data.splits.items():
        texts = [str(t) for t in column_values(split, data.text_column)]
        pairs = [str(t) for t in column_values(split, data.text_pair_column)] if data.text_pair_column else None
        lengths = token_lengths(tokenizer, texts, pairs)
        report = length_report(lengths, max_length)
        tokens = report["tokens"]
        estimated = report.get("estimated", 0)  # huge texts: counted on a sample, scaled by their length
        logger.info(
            "Token lengths of %s (%d texts): median %g, p90 %g, p99 %g, max %d; %.1f%% longer than %d (%s)%s",
            name,
            report["documents"],
            tokens["p50"],
            tokens["p90"],
            tokens["p99"],
            tokens["max"],
            100 * report["truncated_share"],
            max_length,
            long_text,
            f"; {estimated} of these lengths estimated from a sample of the text" if estimated else "",
        )
        splits[name] = report
    most_cut = max(splits, key=lambda name: splits[name]["truncated_share"])
    advice = truncation_advice(splits[most_cut], long_text, offered=get_args(LongTextMode))
    if advice:
        advice = f"In {most_cut}, {advice}"
        logger.warning("%s", advice)
    return {"mode": long_text, "max_length": max_length, "splits": splits, "advice": advice}


def _chunk_settings(data: Any) -> dict[str, Any]:
    """--chunk-stride and --chunk-aggregate for the saved settings; none unless the texts were chunked."""
    if data.long_text != "chunk":
        return {}
    return {"chunk_stride": data.chunk_stride, "chunk_aggregate": data.chunk_aggregate}


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


def train(plan: RunPlan, run_data: RunData, run_model: RunModel) -> TrainedModel:
    """Trainer.train, keeping the best checkpoint by the primary metric."""
    args = plan.args
    set_primary_metric(args, run_data.primary)
    if args.ddp_find_unused_parameters is None:
        # Gradual unfreezing: still-frozen layers get no gradient in early steps, so DDP must expect unused
        # parameters. Otherwise every trainable parameter is used (frozen ones have requires_grad False and
        # DDP ignores them), and skipping the search for unused ones saves a graph traversal per step.
        args.ddp_find_unused_parameters = run_model.unfreeze is not None
    batch = effective_batch_size(args)
    logger.info(
        "Effective batch size %d = %d per device x %d processes x %d accumulation steps; %s batches; "
        "%d data-loading workers; precision %s",
        batch.total,
        batch.per_device,
        batch.processes,
        batch.gradient_accumulation_steps,
        option_text(args.train_sampling_strategy),
        args.dataloader_num_workers,
        precision(args).reason or precision(args).used,
    )
    trainer = build_trainer(
        run_model.prepared.model,
        args,
        run_data.encoded,
        run_data.tokenizer,
        run_data.suite,
        run_data.primary,
        run_model.prepared.param_groups,
        run_data.loss_weights,
        [run_model.unfreeze] if run_model.unfreeze is not None else [],
        chunk_aggregate=plan.config.data.chunk_aggregate,
    )
    stop = StopOnSignal()
    trainer.add_callback(stop)
    resume_from = str(plan.resume_from.checkpoint) if plan.resume_from is not None else None
    with stop_on_signals(stop):
        output = trainer.train(resume_from_checkpoint=resume_from)
    if stop.requested is not None:
        raise TrainingInterrupted(interrupted_message(stop, latest_checkpoint(Path(args.output_dir))), stop.requested)
    return TrainedModel(trainer, output.metrics)


def _training_cost(trained: TrainedModel) -> TrainingCost:
    """The trainer's counts, with the time left for the training steps once evaluations and saves are out."""
    cost = dataclasses.replace(trained.trainer.cost, **trained.trainer.batches.totals())
    runtime = trained.train_metrics.get("train_runtime")
    if runtime is not None:
        cost.steps_s = round(max(0.0, runtime - cost.evaluation_s - cost.checkpoint_s), 4)
    cost.evaluation_s, cost.checkpoint_s = round(cost.evaluation_s, 4), round(cost.checkpoint_s, 4)
    return cost


def evaluate(plan: RunPlan, run_data: RunData, trained: TrainedModel) -> FinalEvaluation:
    """The best model scored on validation (and test); thresholds tuned on validation when asked."""
    return evaluate_splits(
        trained.trainer,
        run_data.encoded,
        run_data.suite,
        run_data.primary,
        tune=plan.config.evaluation.tune_threshold,
        chunk_aggregate=plan.config.data.chunk_aggregate,
        calibration=plan.config.evaluation.calibration,
    )


def write_folder(
    plan: RunPlan,
    run_data: RunData,
    run_model: RunModel,
    trained: TrainedModel,
    final: FinalEvaluation,
    staging: Path,
    is_main: bool,
) -> RunRecord:
    """Model, tokenizer and settings into the staging folder; on the main process the record, card, plots."""
    config = plan.config
    run_model.settings.thresholds = final.threshold_values
    _calibrate_model(trained, run_data, run_model.settings, final)
    save_model(trained.trainer, staging, run_model.settings, run_model.prepared.is_adapter, config.strategy.merge_lora)
    record = build_record(plan, run_data, run_model, trained, final)
    if not is_main:
        return record
    record.reload_check = verify_reload(
        run_model.prepared.model, staging, run_data.data, run_data.tokenizer, run_data.max_length
    )
    record.plots = write_plots(staging, final, run_data.suite)
    record.save(staging)
    write_json(staging / RUN_CONFIG_FILE, _resolved_run_config(config, plan.args, plan.target))
    write_model_card(
        staging,
        record,
        base_model=plan.checkpoint.hub_id,
        # A full NAMESPACE/NAME is known now; a bare NAME is resolved by the Hub at push time.
        repo_id=_card_repo_id(config.training),
        license=config.training.license,
    )
    return record


def _calibrate_model(
    trained: TrainedModel, run_data: RunData, settings: PackageSettings, final: FinalEvaluation
) -> None:
    """Fold the fitted temperature into the model's output layer and keep what prediction needs in its settings.

    Folded into the weights, the temperature reaches every loader (pipeline, load_classifier, ONNX, peft)."""
    if final.temperature is not None:
        layer = fold_temperature(trained.trainer.model, final.temperature.values, probe_batch(run_data.tokenizer))
        settings.calibration = {
            "method": "temperature",
            "temperature": final.calibration["temperature"],
            "rows": final.temperature.rows,
            "folded_into": layer,
        }
    if final.conformal is not None:
        settings.conformal = {key: final.conformal[key] for key in ("score", "rows", "quantiles")}


def finish(plan: RunPlan, record: RunRecord, is_main: bool) -> FineTuneResult:
    """Report where the classifier went and push it when asked (main process only)."""
    result = FineTuneResult(output_dir=plan.target, record=record, is_main_process=is_main)
    if is_main:
        cost = record.training_cost
        if cost is not None and cost.steps_s is not None and record.train_runtime_s:
            logger.info(
                "Training loop %.0f s: steps %.0f s, %d evaluations %.0f s, %d checkpoint saves %.0f s",
                record.train_runtime_s,
                cost.steps_s,
                cost.evaluations,
                cost.evaluation_s,
                cost.checkpoints,
                cost.checkpoint_s,
            )
        value = record.primary_value("eval")
        logger.info(
            "Saved the classifier to %s (%s %s on validation)",
            plan.target,
            record.primary_metric,
            "undefined" if value is None else f"{value:.4f}",
        )
        if plan.config.training.push_to_hub:
            result.push = _push(plan.target, plan.config.training)
    return result


# ------------------------------------------------------------------------------------------- helpers


def _is_main_process(args: TransferTrainingArguments) -> bool:
    """True outside `accelerate launch` and on its main process: the one that writes files."""
    state = args.distributed_state if args.device is not None else None
    return state is None or state.is_main_process


@contextmanager
def _staged(plan: RunPlan) -> Iterator[tuple[Path, bool]]:
    """The staging folder of the run (created on the main process), removed again if anything fails.

    Under `accelerate launch` every process runs the run; only the main one writes files.
    """
    args = plan.args
    state = args.distributed_state if args.device is not None else None
    is_main = _is_main_process(args)
    staging = staging_path(plan.target)
    if is_main:
        resuming_here = plan.resume_from is not None and plan.resume_from.in_staging
        staging = staging if resuming_here else staging_dir(plan.target)
    try:
        yield staging, is_main
        if state is not None:
            state.wait_for_everyone()
    except BaseException:
        if is_main:
            kept = latest_checkpoint(staging)
            if kept is None:
                discard(staging)
            else:  # hours of training are not thrown away for a failure --resume can get past
                logger.warning("The checkpoint %s is kept: continue with the same command plus --resume.", kept)
        raise


def build_record(
    plan: RunPlan, run_data: RunData, run_model: RunModel, trained: TrainedModel, final: FinalEvaluation
) -> RunRecord:
    """The run record (metrics.json) from what the phases produced; reload check and plots come later."""
    config, args, data, prepared = plan.config, plan.args, run_data.data, run_model.prepared
    settings = {**prepared.settings, "learning_rate": args.learning_rate}
    if run_model.unfreeze is not None:
        settings["unfreeze_history"] = run_model.unfreeze.history
    dataset = config.data.dataset_name
    trainable, total = run_model.parameter_counts
    return RunRecord(
        task=data.schema.task,
        strategy=plan.strategy.name,
        primary_metric=run_data.primary.name,
        strategy_settings=settings,
        greater_is_better=run_data.primary.greater_is_better,
        eval=final.records.get("eval", {}),
        test=final.records.get("test"),
        eval_files={
            split.removeprefix(EVAL_FILE_PREFIX): final.records[split] for split in extra_splits(run_data.encoded)
        }
        or None,
        precision=precision(args),
        effective_batch_size=effective_batch_size(args),
        trainable_parameters=trainable,
        total_parameters=total,
        train_runtime_s=trained.train_metrics.get("train_runtime"),
        train_samples_per_second=trained.train_metrics.get("train_samples_per_second"),
        epochs=trained.train_metrics.get("epoch", args.num_train_epochs),
        optimizer_steps=trained.trainer.state.global_step,
        resumed_from_step=checkpoint_step(plan.resume_from.checkpoint) if plan.resume_from is not None else None,
        base_model=plan.checkpoint.hub_id or plan.checkpoint.source,
        hyperparameters=hyperparameters(args),
        labels=data.schema.names,
        dataset=HubDataset(dataset, config.data.dataset_config_name) if dataset else None,
        num_examples={name: len(split) for name, split in data.splits.items()},
        data_sources=data.sources,
        dropped_rows=data.dropped_rows,
        nlp_transfer_version=__version__,
        primary_metric_reason=run_data.primary.reason,
        reported_metrics=run_data.suite.names,
        train_label_counts=dict(zip(run_data.suite.labels, run_data.label_counts))
        if run_data.label_counts is not None
        else None,
        class_weights=run_data.loss_weights.to_dict() if run_data.loss_weights is not None else None,
        decision_thresholds=final.thresholds,
        calibration=final.calibration,
        conformal=final.conformal,
        abstention=final.abstention,
        max_length=run_data.max_length,
        long_text=run_data.text_lengths,
        adapter=prepared.is_adapter,
        pooling={**run_model.pooling.to_dict(), "head_init": run_model.head_init.to_dict()},
        recipe=run_model.recipe.to_dict(),
        learning_curve=learning_curve(trained.trainer.state.log_history, run_data.primary.name),
        training_cost=_training_cost(trained),
    )


def learning_curve(log_history: list[dict[str, Any]], primary: str) -> list[dict[str, float]]:
    """The primary metric at each evaluation Trainer logged (the final re-evaluation of the best model is
    not in the history): what `compare` draws and measures iterations with."""
    key = f"eval_{primary}"
    return [
        {"step": entry["step"], "epoch": entry.get("epoch"), "value": entry[key]}
        for entry in log_history
        if key in entry and "step" in entry
    ]


def _card_repo_id(given: TransferTrainingArguments) -> str | None:
    name = given.hub_model_id
    return name if given.push_to_hub and name and "/" in name else None


def _push(folder: Path, given: TransferTrainingArguments) -> Any:
    """--push-to-hub: the published folder, as `nlp-transfer push` would send it."""
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


def _metric_suite(
    evaluation: EvaluationArguments, schema: LabelSchema, primary: PrimaryMetric, trust_remote_code: bool = False
) -> MetricSuite:
    """The reported metrics: --metrics (plus the primary one) or every shipped metric of the task."""
    names = evaluation.metric_names()
    shipped = available_metrics(schema.task, schema.num_labels)
    if primary.name != "loss" and primary.name not in shipped and primary.name not in names:
        raise UserInputError(
            f"--metric-for-best-model {primary.name} is not a metric of this {schema.task} task. Choose one of: "
            f"{', '.join(shipped)}, or loss; a metric from the Hub must also be named in --metrics."
        )
    return reported_suite(
        schema.task, list(schema.id2label.values()), names, primary.name, trust_remote_code=trust_remote_code
    )


def _resolved_run_config(config: RunConfig, args: TransferTrainingArguments, target: Path) -> dict[str, Any]:
    resolved = copy.deepcopy(config)
    resolved.training = copy.deepcopy(args)
    resolved.training.output_dir = str(target)
    resolved.training.push_to_hub = config.training.push_to_hub  # as asked; the package does the push
    return resolved.to_dict()
