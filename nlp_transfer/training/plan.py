"""Phase 1 of a run, `plan_run`: the options checked, the output folder checked and locked, the strategy, the
checkpoint and the point to resume from resolved; everything that needs no data and no weights (`RunPlan`).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from nlp_transfer.config.run import RunConfig
from nlp_transfer.config.training import TransferTrainingArguments
from nlp_transfer.errors import UserInputError
from nlp_transfer.folder_lock import folder_lock
from nlp_transfer.hub.push import check_hub_access
from nlp_transfer.modeling.checkpoints import Checkpoint, check_checkpoint_files, resolve_checkpoint
from nlp_transfer.modeling.strategies import TransferStrategy, get_strategy
from nlp_transfer.outputs import check_output_dir, staging_path
from nlp_transfer.training.resume import ResumePoint, resolve_resume
from nlp_transfer.training.trainer import run_arguments

logger = logging.getLogger(__name__)


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


def _is_main_process(args: TransferTrainingArguments) -> bool:
    """True outside `accelerate launch` and on its main process: the one that writes files."""
    state = args.distributed_state if args.device is not None else None
    return state is None or state.is_main_process
