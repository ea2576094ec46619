"""The training argument group: `TransferTrainingArguments` (transformers' TrainingArguments with this package's
defaults and run options), the machine-dependent defaults it decides (precision, dataloader workers) and its checks."""

import logging
from dataclasses import dataclass, field

from transformers import TrainingArguments

from nlp_transfer.config.checks import (
    _check_learning_rate,
    _check_report_to,
    _check_reporting_integrations,
    _check_training_length,
    option_text,
)
from nlp_transfer.errors import UserInputError

GPU_DATALOADER_WORKERS = 2


@dataclass(frozen=True)
class PrecisionChoice:
    bf16: bool
    tf32: bool | None
    reason: str


def default_precision(
    gpu: bool, bf16_supported: bool, compute_capability: int, fp16: bool, tf32: bool | None
) -> PrecisionChoice:
    """bf16 mixed precision where the GPU has it, TF32 on Ampere (8.x) and later unless set; fp32 elsewhere.

    Mixed precision keeps fp32 master weights, so fine-tuning loses no accuracy to it, and it halves the memory
    and time of the matrix multiplies; on a CPU bf16 matmuls are emulated and about 100x slower.
    """
    if not gpu:
        return PrecisionChoice(False, tf32, "fp32: no GPU (bf16 is far slower on a CPU)")
    if fp16:
        return PrecisionChoice(False, tf32, "fp16: asked for")
    if not bf16_supported:
        return PrecisionChoice(False, tf32, "fp32: this GPU has no bf16 (pass --fp16 for mixed precision)")
    with_tf32 = tf32 if tf32 is not None else compute_capability >= 8
    reason = "bf16 mixed precision: the GPU supports it" + (
        "; TF32 for the remaining fp32 matrix multiplies" if with_tf32 else ""
    )
    return PrecisionChoice(True, with_tf32, reason)


@dataclass
class TransferTrainingArguments(TrainingArguments):
    """transformers' TrainingArguments, with defaults that suit fine-tuning small encoders, plus run options.

    Every TrainingArguments option is accepted under its own name (`--learning-rate`,
    `--per-device-train-batch-size`, `--report-to tensorboard`, ...).
    """

    _argument_group_name = "training (every transformers TrainingArguments option is accepted)"

    learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Peak learning rate. Default: the strategy's rate for a BERT-base-size model (full 2e-5, "
            "freeze 1e-4, lora 5e-4, hybrid 1e-4, scratch 5e-4), scaled by (768 / hidden size)^2 within "
            "0.5..5x for full, hybrid and freeze (the bundled MiniLM: full 8e-5); a linear probe (freeze with "
            "--train-top-layers 0) 1e-3. The choice and its reason are logged and kept in metrics.json."
        },
    )
    num_train_epochs: float | None = field(
        default=None,
        metadata={
            "help": "Passes over the training data. Default: 5, raised on small training sets until the run "
            "makes at least 200 optimizer steps (at most 100 epochs; then about 10 evaluations, the best kept, "
            "early stopping after 4 without improvement). Logged with its reason and kept in metrics.json."
        },
    )
    per_device_train_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Training batch size per device. Default: the largest of 32, 16, 8 that still gives the "
            "default 5 epochs at least 200 optimizer steps (32 from 1,249 training rows, 8 below 625): larger "
            "batches use the machine better, and few labels need the updates. Logged with its reason."
        },
    )
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per device."})
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "Order of training examples. group_by_length (default): shuffled, then sorted by length "
            "within groups of up to 50 batches, so a batch pads little; random: shuffled; sequential.",
            "choices": ["group_by_length", "random", "sequential", "batch_rebalance"],
        },
    )
    dataloader_num_workers: int | None = field(
        default=None,
        metadata={
            "help": "Processes that collate batches. Default: 0 on a CPU (the texts are tokenized once, "
            "before training, and a worker would take a core from the model), 2 per GPU process."
        },
    )
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "bf16 mixed precision. Default: on where the GPU supports it (with TF32 for the remaining fp32 "
            "matrix multiplies on Ampere and later), fp32 on a CPU (bf16 matmuls are far slower there). Said in "
            "the log and in metrics.json's precision."
        },
    )
    warmup_steps: float = field(
        default=0.1, metadata={"help": "Warm-up: a fraction of training steps if below 1, else a count."}
    )
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay (never applied to biases and LayerNorm)."}
    )
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint: no, steps, epoch, best."})
    logging_steps: float = field(default=25, metadata={"help": "Log the training loss every N steps."})
    save_total_limit: int | None = field(
        default=2,
        metadata={
            "help": "Checkpoints kept during training: default 2, the best and the latest (what --resume continues "
            "from; with 1, Trainer deletes the latest when training stops). All are removed when the run finishes."
        },
    )
    save_only_model: bool = field(
        default=False,
        metadata={
            "help": "Checkpoints without optimizer, scheduler and random state: smaller, but --resume cannot "
            "continue from them. Default off (checkpoints are removed when the run finishes)."
        },
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "Continue an interrupted run (killed, or stopped by SIGTERM / Ctrl-C) from its latest "
            "checkpoint: the same command plus --resume. It ends with the metrics of an uninterrupted run with "
            "the same seed. Without a checkpoint to continue from, training starts at step 0 (said in the log)."
        },
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={"help": "Continue from this checkpoint-N folder instead of the latest one --resume finds."},
    )
    load_best_model_at_end: bool = field(
        default=True, metadata={"help": "Keep the best checkpoint by --metric-for-best-model, not the last."}
    )
    metric_for_best_model: str | None = field(
        default="auto",
        metadata={
            "help": "Metric that picks the best checkpoint and drives early stopping (default 'auto': chosen "
            "from the task and the training labels: accuracy for balanced single-label classes, macro-F1 "
            "(MCC for binary) when the majority/minority ratio exceeds 3, micro-F1 for multi-label, RMSE for "
            "regression; the reason is logged and saved in metrics.json). Any reported metric name."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace a non-empty --output-dir (only once the new run has finished)."},
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop when the primary metric has not improved for N evaluations (needs eval and "
            "save strategies to match, as they do by default)."
        },
    )

    license: str | None = field(
        default=None,
        metadata={
            "help": "License of the trained model for the model card's metadata (e.g. apache-2.0, mit, "
            "cc-by-4.0). The base model's and the training data's licenses still apply to it."
        },
    )
    push_to_hub: bool = field(
        default=False,
        metadata={
            "help": "After training, upload the finished output folder to --hub-model-id (model, tokenizer, "
            "card, metrics; never checkpoints, optimizer state or logs) in one commit. The token comes from "
            "HF_TOKEN or 'hf auth login'. Also: --hub-private-repo, --hub-revision."
        },
    )

    def __post_init__(self) -> None:
        # TrainingArguments replaces a missing output_dir with "trainer_output"; remember that none was
        # given so that training can refuse to write to a folder the user never named.
        self.output_dir_missing = self.output_dir is None
        self.precision_reason = self._choose_precision()
        self.precision_fallback = self._fall_back_to_fp32_without_gpu()
        self._use_cpu_without_accelerator()
        self.dataloader_reason = self._choose_dataloader_workers()
        super().__post_init__()

    def _use_cpu_without_accelerator(self) -> None:
        """On a machine without GPU, say use_cpu: then several launched processes form a gloo (MULTI_CPU) group.

        With use_cpu False, accelerate's PartialState sees no GPU and no CPU request and treats every process
        launched by torchrun / `accelerate launch --multi_gpu` as a separate single-process run.
        """
        import torch

        if not (torch.cuda.is_available() or torch.backends.mps.is_available()):
            self.use_cpu = True

    def _choose_dataloader_workers(self) -> str | None:
        """An unset --dataloader-num-workers, decided for the machine; the reason, or None if given."""
        import torch

        gpu = torch.cuda.is_available() and not self.use_cpu
        if self.use_cpu:
            self.dataloader_pin_memory = False  # pinned memory speeds copies to a GPU; without one torch warns
        if self.dataloader_num_workers is not None:
            return None
        if gpu:
            self.dataloader_num_workers = GPU_DATALOADER_WORKERS
            return f"{GPU_DATALOADER_WORKERS} per GPU process: batches are collated while the GPU computes"
        self.dataloader_num_workers = 0
        return "none without a CUDA GPU: the texts are tokenized before training, and a worker would take a core"

    def _choose_precision(self) -> str | None:
        """An unset --bf16, decided for the machine (see `default_precision`); the reason, or None if given."""
        import torch

        if self.bf16 is not None:
            return None
        gpu = torch.cuda.is_available() and not self.use_cpu
        choice = default_precision(
            gpu=gpu,
            bf16_supported=gpu and torch.cuda.is_bf16_supported(),
            compute_capability=torch.cuda.get_device_capability()[0] if gpu else 0,
            fp16=self.fp16,
            tf32=self.tf32,
        )
        self.bf16, self.tf32 = choice.bf16, choice.tf32
        return choice.reason

    def _fall_back_to_fp32_without_gpu(self) -> str | None:
        """--bf16/--fp16 without a GPU: train in fp32 and say so (bf16 matmuls are ~100x slower on CPUs).

        TrainingArguments would otherwise refuse bf16 on a CPU, or run it painfully slowly with --use-cpu.
        """
        import torch

        asked = "bf16" if self.bf16 else ("fp16" if self.fp16 else None)
        if asked is None or (torch.cuda.is_available() and not self.use_cpu):
            return None
        self.bf16 = self.fp16 = False
        logging.getLogger("nlp_transfer").warning(
            "--%s was asked for, but there is no GPU: training in fp32 instead (%s on a CPU is far slower).",
            asked,
            asked,
        )
        return asked

    def check(self) -> None:
        """Trainer options that contradict each other or the package, refused before any work."""
        if self.early_stopping_patience is not None:
            if self.early_stopping_patience < 1:
                raise UserInputError("--early-stopping-patience must be at least 1 evaluation.")
            if option_text(self.eval_strategy) == "no":
                raise UserInputError("--early-stopping-patience needs evaluations: leave --eval-strategy at 'epoch'.")
            if not self.load_best_model_at_end:
                raise UserInputError("--early-stopping-patience needs --load-best-model-at-end (the default).")
        if self.push_to_hub and not self.hub_model_id:
            raise UserInputError("--push-to-hub needs --hub-model-id NAME (e.g. my-user/support-classifier).")
        _check_training_length(self.num_train_epochs, self.max_steps)
        _check_learning_rate(self.learning_rate)
        _check_counts(self)
        _check_report_to(self.report_to)
        _check_reporting_integrations(self.report_to)

    @property
    def given_output_dir(self) -> str | None:
        """The output folder the user named, or None."""
        if getattr(self, "output_dir_missing", False) and self.output_dir == "trainer_output":
            return None
        return self.output_dir


COUNT_OPTIONS = (
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "eval_accumulation_steps",
)
"""Options that count things a step is made of: 0 or less is refused (Trainer divides by some of them)."""


def _check_counts(training: TransferTrainingArguments) -> None:
    for name in COUNT_OPTIONS:
        value = getattr(training, name, None)
        if value is not None and value < 1:
            raise UserInputError(
                f"--{name.replace('_', '-')} must be at least 1, not {value}"
                + (
                    ": leave it out to let the recipe choose the batch."
                    if name == "per_device_train_batch_size"
                    else "."
                )
            )
