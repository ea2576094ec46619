"""Phases 4 and 5 of a run: `train` (transformers' Trainer, the best checkpoint kept by the primary metric, a
signal stops it at a checkpoint --resume continues from; `TrainedModel`) and `evaluate` (the best model scored).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nlp_transfer.config.checks import option_text
from nlp_transfer.errors import TrainingInterrupted
from nlp_transfer.training.data_phase import RunData
from nlp_transfer.training.final_evaluation import FinalEvaluation, evaluate_splits
from nlp_transfer.training.model_phase import RunModel
from nlp_transfer.training.plan import RunPlan
from nlp_transfer.training.recipes import effective_batch_size
from nlp_transfer.training.resume import StopOnSignal, interrupted_message, latest_checkpoint, stop_on_signals
from nlp_transfer.training.trainer import TransferTrainer, build_trainer, precision, set_primary_metric

logger = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """Phase 4: the Trainer holding the best model, and Trainer's training figures."""

    trainer: TransferTrainer
    train_metrics: dict[str, float]


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
