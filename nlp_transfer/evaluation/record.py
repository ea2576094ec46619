"""The typed record of one run: built once by training, written once as `metrics.json`, read by everyone else.

The model card, `push`, the CLI report and the scripts read a `RunRecord`'s attributes, never the JSON's
string keys. The JSON keys are the documented ones (README.md: users parse them) and stay as they are;
`RunRecord.load` also reads a `metrics.json` written by an earlier version, where later fields are absent.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp_transfer.errors import UserInputError
from nlp_transfer.outputs import METRICS_FILE, write_json

# metrics.json's keys of the evaluated splits, and the data splits they score.
RECORD_SPLITS = {"eval": "validation", "test": "test"}
# metrics.json has these keys only when they apply: a test split was given; the task has classes.
# Absent from metrics.json when None, as in the versions written before they existed.
ABSENT_WHEN_NONE = (
    "test",
    "eval_files",
    "train_label_counts",
    "pooling",
    "recipe",
    "optimizer_steps",
    "resumed_from_step",
    "learning_curve",
    "training_cost",
    "long_text",
    "calibration",
    "conformal",
    "abstention",
)
# Keys inside one of the record's dicts that are likewise absent when None.
NESTED_ABSENT_WHEN_NONE = {
    "precision": ("reason",),
    "hyperparameters": ("train_sampling_strategy", "dataloader_num_workers"),  # not recorded by older runs
}
# Trainer's own figures of an evaluation, kept in a split's dict beside the metric suite's values.
TRAINER_FIGURES = ("loss", "runtime", "samples_per_second", "steps_per_second")
# Figures in a split's dict that describe the evaluation run, not the model's quality.
RUN_FIGURES = (*TRAINER_FIGURES, "num_examples", "epoch")


@dataclass
class Precision:
    """The floating-point precision asked for, and the one used (bf16/fp16 fall back to fp32 without a GPU)."""

    used: str = "fp32"
    asked: str = "fp32"
    reason: str | None = None
    """Why, when the package chose it (the option was left unset)."""


@dataclass
class EffectiveBatchSize:
    """Examples per optimizer step: per device x processes x gradient-accumulation steps."""

    per_device: int = 0
    processes: int = 1
    gradient_accumulation_steps: int = 1
    total: int = 0


@dataclass
class TrainingCost:
    """What the training loop computed and where its time went: the steps apart from evaluation and checkpoints.

    Trainer's train_runtime_s (and samples per second) counts the evaluations and checkpoint saves inside the
    loop; `steps_s` is what is left for the training steps. FLOPs are nlp_transfer.modeling.flops' count on real tokens,
    with the layers that trained at each step (gradual unfreezing included).
    """

    sequences: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    """Tokens the training batches carried, padding included."""
    flops: float = 0.0
    steps_s: float | None = None
    evaluation_s: float = 0.0
    evaluations: int = 0
    checkpoint_s: float = 0.0
    checkpoints: int = 0

    @property
    def padding_share(self) -> float | None:
        return 1 - self.real_tokens / self.padded_tokens if self.padded_tokens else None


@dataclass
class HubDataset:
    """A Hub dataset the run trained on (the card's `datasets` metadata)."""

    name: str
    config: str | None = None


@dataclass
class Hyperparameters:
    """The Trainer settings a reader of the model card needs to reproduce the run."""

    learning_rate: float | None = None
    num_train_epochs: float | None = None
    per_device_train_batch_size: int | None = None
    effective_batch_size: int | None = None
    weight_decay: float | None = None
    warmup_steps: float | None = None
    lr_scheduler_type: str | None = None
    optim: str | None = None
    seed: int | None = None
    precision: str | None = None
    train_sampling_strategy: str | None = None
    dataloader_num_workers: int | None = None


@dataclass(kw_only=True)
class RunRecord:
    """What one run did and measured; `metrics.json` is its JSON form (same field names, same order)."""

    task: str
    strategy: str
    strategy_settings: dict[str, Any] = field(default_factory=dict)
    primary_metric: str
    greater_is_better: bool = True
    eval: dict[str, Any] = field(default_factory=dict)
    """Validation: every metric, per_class, confusion_matrix, calibration, and Trainer's loss and timings."""
    precision: Precision = field(default_factory=Precision)
    effective_batch_size: EffectiveBatchSize = field(default_factory=EffectiveBatchSize)
    trainable_parameters: int = 0
    total_parameters: int = 0
    train_runtime_s: float | None = None
    train_samples_per_second: float | None = None
    epochs: float | None = None
    optimizer_steps: int | None = None
    resumed_from_step: int | None = None
    """Set when the run continued an interrupted one: train_runtime_s, samples per second and training_cost
    then cover only the steps after it."""
    base_model: str | None = None
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    labels: list[str] = field(default_factory=list)
    dataset: HubDataset | None = None
    num_examples: dict[str, int] = field(default_factory=dict)
    data_sources: dict[str, str] = field(default_factory=dict)
    dropped_rows: dict[str, Any] = field(default_factory=dict)
    nlp_transfer_version: str | None = None
    primary_metric_reason: str | None = None
    reported_metrics: list[str] = field(default_factory=list)
    train_label_counts: dict[str, int] | None = None
    class_weights: dict[str, Any] | None = None
    decision_thresholds: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    """The temperature fitted on validation (folded into the saved weights), the rows it came from, and each
    split's ECE / log loss / Brier / accuracy before and after it; absent with --calibration none."""
    conformal: dict[str, Any] | None = None
    """The conformal quantiles saved with the model (score, rows, quantile per coverage level) and, per split
    other than validation, the empirical coverage and mean set size (interval width) at 0.8 and 0.9."""
    abstention: dict[str, Any] | None = None
    """Risk-coverage of test (else validation): accuracy when only the most confident 100/90/80/50% of texts are
    answered, the --min-confidence for each, and the area under the risk-coverage curve."""
    test: dict[str, Any] | None = None
    """The test split, like `eval`, when one was given."""
    eval_files: dict[str, dict[str, Any]] | None = None
    """Each --eval-file NAME=FILE, like `eval`, by NAME."""
    max_length: int | None = None
    long_text: dict[str, Any] | None = None
    """How texts longer than max_length were read: mode, max_length, each split's token lengths and share of
    truncated texts (`splits`), and the advice logged when more than 10% were cut."""
    adapter: bool = False
    pooling: dict[str, Any] | None = None
    """How the head reads the encoder: mode, reason, own_head (heads.PoolingChoice)."""
    recipe: dict[str, Any] | None = None
    """What the package chose for the options left unset (learning rate, epochs, ...), each with its reason."""
    learning_curve: list[dict[str, float]] | None = None
    """The primary metric at each evaluation during training: [{"step", "epoch", "value"}], on validation."""
    training_cost: TrainingCost | None = None
    reload_check: dict[str, Any] | None = None
    plots: dict[str, str] | None = None

    # ------------------------------------------------------------------ reading

    def split(self, key: str) -> dict[str, Any]:
        """The evaluation dict of a split key ('eval', 'test' or an --eval-file NAME); empty when not evaluated."""
        if key in RECORD_SPLITS:
            return (self.eval if key == "eval" else self.test) or {}
        return (self.eval_files or {}).get(key) or {}

    @property
    def evaluated_splits(self) -> dict[str, dict[str, Any]]:
        """{'validation': ..., 'test': ..., NAME: ...} for the splits that were evaluated, validation first, then
        test, then the --eval-file splits by name."""
        splits = {name: self.split(key) for key, name in RECORD_SPLITS.items() if self.split(key)}
        return {**splits, **(self.eval_files or {})}

    def primary_value(self, key: str = "eval") -> float | None:
        """The primary metric's value on a split; None when it is missing or undefined there."""
        value = self.split(key).get(self.primary_metric)
        return float(value) if is_finite_number(value) else None

    def results(self, key: str) -> dict[str, float]:
        """The metric values of a split: finite numbers, no timings; the loss only when it is the primary metric."""
        excluded = [name for name in RUN_FIGURES if not (name == "loss" and self.primary_metric == "loss")]
        return {
            name: float(value)
            for name, value in self.split(key).items()
            if is_finite_number(value) and name not in excluded
        }

    @property
    def detail_split(self) -> str:
        """The split whose per-class figures and plots are shown: test when there is one, else validation."""
        return "test" if self.test else "eval"

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        for name in ABSENT_WHEN_NONE:
            if values[name] is None:
                del values[name]
        for name, inner in NESTED_ABSENT_WHEN_NONE.items():
            for key in inner:
                if isinstance(values.get(name), dict) and values[name].get(key, "") is None:
                    del values[name][key]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = METRICS_FILE) -> RunRecord:
        """Read a metrics.json mapping; fields added after it was written keep their defaults."""
        missing = [name for name in ("task", "strategy", "primary_metric") if name not in values]
        if missing:
            raise UserInputError(
                f"{source} is not the metrics.json of an nlp-transfer run: it has no {', '.join(missing)}."
            )
        return _build(cls, values)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / METRICS_FILE
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, folder: str | Path) -> RunRecord:
        """The record in a trained folder's metrics.json (written by this or an earlier version)."""
        path = Path(folder) / METRICS_FILE
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserInputError(f"{path} does not exist: give the output folder of a finished run.") from None
        except (OSError, ValueError) as error:
            raise UserInputError(f"{path} could not be read as JSON ({type(error).__name__}: {error}).") from None
        if not isinstance(values, dict):
            raise UserInputError(f"{path} holds a {type(values).__name__}, not the record of a run.")
        return cls.from_dict(values, source=str(path))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A metric value worth reporting: a real number (not a bool), neither NaN nor infinite."""
    return _is_number(value) and math.isfinite(value)


def _build(cls: type, values: dict[str, Any]) -> Any:
    """A dataclass from a JSON mapping: known fields only, nested record dataclasses built the same way."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for item in dataclasses.fields(cls):
        if item.name in values:
            kwargs[item.name] = _convert(hints[item.name], values[item.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    """`value` as the field's type says, where that type is one of this module's dataclasses (or None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    nested = next((option for option in options if dataclasses.is_dataclass(option)), None)
    if nested is not None and isinstance(value, dict):
        return _build(nested, value)
    return value
