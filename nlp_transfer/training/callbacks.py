"""Trainer callbacks the strategies need: gradual unfreezing (ULMFiT)."""

from __future__ import annotations

import logging
import math

from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

logger = logging.getLogger(__name__)


class GradualUnfreezeCallback(TrainerCallback):
    """Start with the top unit (the head) alone; unfreeze one more unit from the top each epoch or N steps.

    `units` come from the strategy, top first. Every unit is already in the optimizer (the strategy built
    its groups while all were trainable), so unfreezing only flips `requires_grad`: frozen parameters get
    no gradient and AdamW skips them until then.
    """

    def __init__(self, units: list[list[nn.Parameter]], every_steps: int | None = None) -> None:
        self.units = units
        self.every_steps = every_steps
        self.stage = -1
        self.history: list[tuple[int, int]] = []
        """(global step, number of trainable units) at each change, for metrics.json and tests."""

    def _set_stage(self, stage: int, step: int) -> None:
        stage = min(stage, len(self.units) - 1)
        if stage == self.stage:
            return
        self.stage = stage
        for index, unit in enumerate(self.units):
            for parameter in unit:
                parameter.requires_grad_(index <= stage)
        self.history.append((step, stage + 1))
        logger.info("Gradual unfreezing: %d of %d units trainable (step %d)", stage + 1, len(self.units), step)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._set_stage(0, state.global_step)

    def on_epoch_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self.every_steps is None:
            # floor, not round: a run resumed mid-epoch begins its epoch at a fractional state.epoch (2.6 is
            # epoch 2); the tolerance keeps an epoch start counted as 1.9999999 at 2.
            self._set_stage(math.floor((state.epoch or 0) + 1e-6), state.global_step)

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self.every_steps is not None:
            self._set_stage(state.global_step // self.every_steps, state.global_step)
