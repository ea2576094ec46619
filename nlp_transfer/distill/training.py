"""Training the student through transformers' `Trainer`, with the distillation loss instead of the model's own.

Each row carries the teacher's logits (computed once, before training), its true label when it has one and a
flag saying which: `DistillationTrainer.compute_loss` hands them to `loss.distillation_loss`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from nlp_transfer.config.long_text import LongTextSettings
from nlp_transfer.data.long_text import encode_documents
from nlp_transfer.distill.loss import distillation_loss
from nlp_transfer.distill.students import Student
from nlp_transfer.evaluation.documents import DOCUMENT
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION

logger = logging.getLogger(__name__)

TEACHER_LOGITS = "teacher_logits"
LABELLED = "labelled"


@dataclass
class TransferSet:
    """The texts the student learns from: the teacher's logits for each, and the true label where known."""

    texts: list[str]
    pairs: list[str] | None
    teacher_logits: np.ndarray
    labels: np.ndarray
    """One row per text; a placeholder (0 / zeros) where `labelled` is False."""
    labelled: np.ndarray

    @property
    def labelled_rows(self) -> int:
        return int(self.labelled.sum())


def placeholder_labels(task: str, rows: int, num_labels: int) -> np.ndarray:
    """Labels for rows that have none (masked out of the loss): the right shape and type for `task`."""
    if task == MULTI_LABEL:
        return np.zeros((rows, num_labels), dtype=np.float32)
    if task == REGRESSION:
        return np.zeros(rows, dtype=np.float32)
    return np.zeros(rows, dtype=np.int64)


def _dataset(transfer: TransferSet, student: Student) -> Dataset:
    """Every input the student's tokenizer gives (segment ids of a pair too), cut as the student reads texts."""
    if student.long_text == "truncate-head":
        columns = dict(
            student.tokenizer(transfer.texts, transfer.pairs, truncation=True, max_length=student.max_length)
        )
    else:  # truncate-tail, head-tail: as prediction reads them (chunk students read the head)
        settings = LongTextSettings(student.long_text, student.max_length)
        columns = encode_documents(student.tokenizer, transfer.texts, settings, transfer.pairs)
        del columns[DOCUMENT]  # one row per text in these modes
    return Dataset.from_dict(
        {
            **{name: list(values) for name, values in columns.items()},
            TEACHER_LOGITS: transfer.teacher_logits.astype(np.float32).tolist(),
            "labels": transfer.labels.tolist(),
            LABELLED: transfer.labelled.astype(bool).tolist(),
        }
    )


class _Collator:
    """Pads the tokenizer's columns per batch; stacks the teacher's logits, the labels and the labelled flags."""

    def __init__(self, tokenizer: Any, task: str) -> None:
        self.tokenizer, self.task = tokenizer, task

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        extra = (TEACHER_LOGITS, "labels", LABELLED)
        tokens = self.tokenizer.pad(
            [{key: value for key, value in row.items() if key not in extra} for row in rows], return_tensors="pt"
        )
        label_type = torch.long if self.task not in (MULTI_LABEL, REGRESSION) else torch.float32
        return {
            **tokens,
            TEACHER_LOGITS: torch.tensor([row[TEACHER_LOGITS] for row in rows], dtype=torch.float32),
            "labels": torch.tensor([row["labels"] for row in rows], dtype=label_type),
            LABELLED: torch.tensor([row[LABELLED] for row in rows], dtype=torch.bool),
        }


class DistillationTrainer(Trainer):
    """`Trainer` whose loss is the student's distance to the teacher (and to the labels, weighted by alpha)."""

    def __init__(self, *args: Any, task: str, temperature: float, alpha: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.task, self.temperature, self.alpha = task, temperature, alpha

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher = inputs.pop(TEACHER_LOGITS)
        labels = inputs.pop("labels")
        labelled = inputs.pop(LABELLED)
        outputs = model(**inputs)  # input ids, attention mask and, for a pair, its segment ids
        loss = distillation_loss(outputs.logits, teacher, labels, labelled, self.task, self.temperature, self.alpha)
        return (loss, outputs) if return_outputs else loss


@dataclass
class StudentTraining:
    """The Trainer settings of a distillation (the rest are TrainingArguments' defaults)."""

    epochs: float
    learning_rate: float
    batch_size: int = 32
    seed: int = 42
    temperature: float = 2.0
    alpha: float = 0.5
    bf16: bool = False
    quiet: bool = False


def train_student(
    student: Student, transfer: TransferSet, task: str, settings: StudentTraining, work_dir: Path
) -> dict[str, float]:
    """Train the student's model in place on the transfer set; Trainer's train metrics (runtime, samples per second)."""
    args = TrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        seed=settings.seed,
        bf16=settings.bf16,
        warmup_steps=0.06,
        weight_decay=0.01,
        lr_scheduler_type="linear",
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=50,
        report_to=[],
        remove_unused_columns=False,
        disable_tqdm=settings.quiet,
        train_sampling_strategy="group_by_length",  # batches of similar lengths pad little
    )
    model, tokenizer = student.model, student.tokenizer
    dataset = _dataset(transfer, student)
    model.requires_grad_(True)  # every weight trains; a merged LoRA teacher's base comes back frozen
    trainer = DistillationTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=_Collator(tokenizer, task),
        task=task,
        temperature=settings.temperature,
        alpha=settings.alpha,
    )
    result = trainer.train()
    model.eval()
    return dict(result.metrics)
