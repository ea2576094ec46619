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

The phases live in modules of their own: plan.py, data_phase.py, model_phase.py, train_phase.py (train and
evaluate) and write.py; this module keeps their order, the staging folder, publishing and the result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.config.run import RunConfig
from nlp_transfer.config.training import TransferTrainingArguments
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.hub.push import push_folder
from nlp_transfer.outputs import CARD_FILE, METRICS_FILE, discard, publish, staging_dir, staging_path
from nlp_transfer.training.data_phase import read_data
from nlp_transfer.training.model_phase import build_model
from nlp_transfer.training.plan import RunPlan, _is_main_process, plan_run
from nlp_transfer.training.resume import latest_checkpoint
from nlp_transfer.training.train_phase import evaluate, train
from nlp_transfer.training.write import write_folder

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
