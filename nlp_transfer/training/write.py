"""Phase 6 of a run, `write_folder`: the fitted temperature folded into the model, model and tokenizer saved into
the staging folder, and on the main process the run record (metrics.json, `build_record`), the resolved run
config, the model card and the plots, the folder checked by reloading it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any

from nlp_transfer.config.run import RunConfig
from nlp_transfer.config.training import TransferTrainingArguments
from nlp_transfer.data.reading import EVAL_FILE_PREFIX
from nlp_transfer.evaluation.calibration import fold_temperature, probe_batch
from nlp_transfer.evaluation.record import HubDataset, RunRecord, TrainingCost
from nlp_transfer.hub.card import write_model_card
from nlp_transfer.outputs import RUN_CONFIG_FILE, write_json
from nlp_transfer.settings import PackageSettings
from nlp_transfer.training.data_phase import RunData
from nlp_transfer.training.final_evaluation import FinalEvaluation, extra_splits, write_plots
from nlp_transfer.training.model_phase import RunModel
from nlp_transfer.training.plan import RunPlan
from nlp_transfer.training.recipes import effective_batch_size
from nlp_transfer.training.resume import checkpoint_step
from nlp_transfer.training.saving import save_model
from nlp_transfer.training.train_phase import TrainedModel
from nlp_transfer.training.trainer import hyperparameters, precision
from nlp_transfer.training.verification import verify_reload
from nlp_transfer.version import __version__

logger = logging.getLogger(__name__)


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


# ------------------------------------------------------------------------------------------- helpers


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


def _training_cost(trained: TrainedModel) -> TrainingCost:
    """The trainer's counts, with the time left for the training steps once evaluations and saves are out."""
    cost = dataclasses.replace(trained.trainer.cost, **trained.trainer.batches.totals())
    runtime = trained.train_metrics.get("train_runtime")
    if runtime is not None:
        cost.steps_s = round(max(0.0, runtime - cost.evaluation_s - cost.checkpoint_s), 4)
    cost.evaluation_s, cost.checkpoint_s = round(cost.evaluation_s, 4), round(cost.checkpoint_s, 4)
    return cost


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


def _resolved_run_config(config: RunConfig, args: TransferTrainingArguments, target: Path) -> dict[str, Any]:
    resolved = copy.deepcopy(config)
    resolved.training = copy.deepcopy(args)
    resolved.training.output_dir = str(target)
    resolved.training.push_to_hub = config.training.push_to_hub  # as asked; the package does the push
    return resolved.to_dict()
