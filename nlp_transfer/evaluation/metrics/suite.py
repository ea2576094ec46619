"""Which metrics a task reports, how the model's raw outputs become their inputs, and the full report.

A `MetricSuite` knows the task, the label names, the metrics to report and the decision thresholds. From
logits and references it computes the metric values (for Trainer after each evaluation) or a whole
`EvaluationReport`: values, the reason for each undefined value, the per-class report, the confusion
matrix and the calibration bins.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as sk
from transformers import EvalPrediction

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.documents import per_document
from nlp_transfer.evaluation.metrics import modules as m
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL

logger = logging.getLogger(__name__)

MULTI_LABEL_THRESHOLD = 0.5
DECISIONS, SCORES = "decisions", "scores"


@dataclass(frozen=True)
class MetricSpec:
    """One reported number: which module computes it, with which options, and from which inputs."""

    name: str
    module: type[m.PackageMetric]
    greater_is_better: bool
    uses: str = DECISIONS
    """DECISIONS: class ids / 0-1 vectors / values; SCORES: probabilities."""
    options: dict[str, Any] = field(default_factory=dict)
    binary_only: bool = False


def _averaged(module: type[m.PackageMetric], key: str) -> list[MetricSpec]:
    return [
        MetricSpec(f"{average}_{key}", module, True, options={"average": average})
        for average in ("macro", "micro", "weighted")
    ]


SINGLE_LABEL_METRICS = [
    MetricSpec("accuracy", m.Accuracy, True),
    MetricSpec("balanced_accuracy", m.BalancedAccuracy, True),
    *_averaged(m.Precision, "precision"),
    *_averaged(m.Recall, "recall"),
    *_averaged(m.F1, "f1"),
    # Binary tasks conventionally report precision/recall/F1 of the positive class, id 1.
    MetricSpec("precision", m.Precision, True, options={"average": "binary"}, binary_only=True),
    MetricSpec("recall", m.Recall, True, options={"average": "binary"}, binary_only=True),
    MetricSpec("f1", m.F1, True, options={"average": "binary"}, binary_only=True),
    MetricSpec("mcc", m.MatthewsCorrelation, True),
    MetricSpec("cohen_kappa", m.CohenKappa, True),
    MetricSpec("roc_auc", m.RocAuc, True, uses=SCORES),
    MetricSpec("average_precision", m.AveragePrecision, True, uses=SCORES),
    MetricSpec("log_loss", m.LogLoss, False, uses=SCORES),
    MetricSpec("brier", m.BrierScore, False, uses=SCORES),
    MetricSpec("ece", m.ExpectedCalibrationError, False, uses=SCORES),
]
MULTI_LABEL_METRICS = [
    MetricSpec("micro_f1", m.MultiLabelF1, True, options={"average": "micro"}),
    MetricSpec("macro_f1", m.MultiLabelF1, True, options={"average": "macro"}),
    MetricSpec("samples_f1", m.MultiLabelF1, True, options={"average": "samples"}),
    MetricSpec("subset_accuracy", m.SubsetAccuracy, True),
    MetricSpec("hamming_loss", m.HammingLoss, False),
    MetricSpec("roc_auc", m.MultiLabelRocAuc, True, uses=SCORES),
]
REGRESSION_METRICS = [
    MetricSpec("mse", m.MeanSquaredError, False),
    MetricSpec("rmse", m.RootMeanSquaredError, False),
    MetricSpec("mae", m.MeanAbsoluteError, False),
    MetricSpec("r2", m.RSquared, True),
    MetricSpec("pearson", m.PearsonCorrelation, True),
    MetricSpec("spearman", m.SpearmanCorrelation, True),
]
TASK_METRICS = {SINGLE_LABEL: SINGLE_LABEL_METRICS, MULTI_LABEL: MULTI_LABEL_METRICS, REGRESSION: REGRESSION_METRICS}

# Majority/minority ratio of the training labels above which accuracy stops saying much.
IMBALANCE_RATIO = 3.0


def available_metrics(task: str, num_labels: int, uses: str | None = None) -> list[str]:
    """Names of the metrics the package ships for a task (binary-only ones only for two classes).

    `uses` keeps those computed from DECISIONS or from SCORES only.
    """
    return [
        spec.name
        for spec in TASK_METRICS[task]
        if (not spec.binary_only or num_labels == 2) and (uses is None or spec.uses == uses)
    ]


def all_metric_names() -> list[str]:
    """Every metric name the package ships, over all tasks, in table order."""
    names = [spec.name for task in TASK_METRICS for spec in TASK_METRICS[task]]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class PrimaryMetric:
    """The metric that picks the best checkpoint and drives early stopping, and why it was chosen."""

    name: str
    greater_is_better: bool
    reason: str


def choose_primary_metric(task: str, label_counts: Sequence[int] | None = None) -> PrimaryMetric:
    """Pick the primary metric from the task and the training labels' class counts (single-label)."""
    if task == REGRESSION:
        return PrimaryMetric("rmse", False, "regression: root mean squared error, in the units of the labels")
    if task == MULTI_LABEL:
        return PrimaryMetric(
            "micro_f1", True, "multi-label: micro-F1 pools every (example, label) decision, so rare labels count"
        )
    counts = [int(c) for c in label_counts or []]
    if len(counts) >= 2 and min(counts) > 0 and max(counts) / min(counts) > IMBALANCE_RATIO:
        ratio = max(counts) / min(counts)
        if len(counts) == 2:
            return PrimaryMetric(
                "mcc",
                True,
                f"binary labels with a majority/minority ratio of {ratio:.1f} (> {IMBALANCE_RATIO:g}): Matthews "
                "correlation, since accuracy rewards predicting the majority class",
            )
        return PrimaryMetric(
            "macro_f1",
            True,
            f"{len(counts)} classes with a majority/minority ratio of {ratio:.1f} (> {IMBALANCE_RATIO:g}): "
            "macro-F1, so every class counts equally",
        )
    if len(counts) >= 2 and min(counts) == 0:
        return PrimaryMetric("macro_f1", True, "a class has no training example: macro-F1, so every class counts")
    ratio_text = f" (majority/minority ratio {max(counts) / min(counts):.1f})" if counts and min(counts) > 0 else ""
    return PrimaryMetric("accuracy", True, f"balanced single-label classes{ratio_text}: accuracy")


def resolve_primary_metric(task: str, counts: Sequence[int] | None, requested: str | None) -> PrimaryMetric:
    """The task's choice, or the one named by --metric-for-best-model (an `eval_` prefix is accepted)."""
    if requested in (None, "", "auto"):
        return choose_primary_metric(task, counts)
    name = requested.removeprefix("eval_")
    if name == "loss":
        return PrimaryMetric("loss", False, "given by --metric-for-best-model (the validation loss)")
    direction = metric_direction(task, name)
    greater_is_better = direction if direction is not None else not name.endswith("loss")
    return PrimaryMetric(name, greater_is_better, "given by --metric-for-best-model")


def reported_primary(task: str, num_labels: int, saved: str | None) -> str:
    """The primary metric to report for a saved model: the one it was trained with, when the package ships it.

    A model trained with --metric-for-best-model loss (or a Hub metric) is reported by the task's default.
    """
    if saved in available_metrics(task, num_labels):
        return saved
    return choose_primary_metric(task).name


def metric_direction(task: str, name: str) -> bool | None:
    """greater_is_better of a shipped metric, None for a name the package does not ship."""
    return next((spec.greater_is_better for spec in TASK_METRICS[task] if spec.name == name), None)


def probabilities_from_logits(logits: np.ndarray, task: str) -> np.ndarray:
    """Softmax for single-label, sigmoid per label for multi-label, the raw value for regression."""
    logits = np.asarray(logits, dtype=np.float64)
    if task == REGRESSION:
        return logits.reshape(-1)
    if task == MULTI_LABEL:
        return 1 / (1 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def threshold_vector(labels: Sequence[str], thresholds: dict[str, float] | None, task: str) -> np.ndarray | None:
    """Per-label thresholds (multi-label) or the positive class's (binary) as an array; None: argmax."""
    if task == MULTI_LABEL:
        thresholds = thresholds or {}
        return np.array([thresholds.get(label, MULTI_LABEL_THRESHOLD) for label in labels], dtype=np.float64)
    if task == SINGLE_LABEL and thresholds and len(labels) == 2 and labels[1] in thresholds:
        return np.array([thresholds[labels[1]]], dtype=np.float64)
    return None


def decide(scores: np.ndarray, task: str, thresholds: np.ndarray | None = None) -> np.ndarray:
    """Decisions from probabilities: class ids (argmax, or p(id 1) >= threshold), 0/1 vectors, or values."""
    if task == REGRESSION:
        return scores
    if task == MULTI_LABEL:
        cut = thresholds if thresholds is not None else MULTI_LABEL_THRESHOLD
        return (scores >= cut).astype(int)
    if thresholds is not None and scores.shape[1] == 2:
        return (scores[:, 1] >= thresholds[0]).astype(int)
    return scores.argmax(axis=-1)


def logits_to_predictions(logits: np.ndarray, task: str, thresholds: np.ndarray | None = None) -> np.ndarray:
    """Class ids, 0/1 vectors or values, from the model's raw outputs."""
    return decide(probabilities_from_logits(logits, task), task, thresholds)


@dataclass
class EvaluationReport:
    """Everything measured on one split."""

    metrics: dict[str, float]
    undefined: dict[str, str]
    per_class: dict[str, dict[str, Any]] | None = None
    confusion_matrix: Any = None
    calibration: list[dict[str, float]] | None = None
    num_examples: int = 0

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {**self.metrics}
        if self.undefined:
            record["undefined"] = self.undefined
        for key in ("per_class", "confusion_matrix", "calibration"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        record["num_examples"] = self.num_examples
        return record


class MetricSuite:
    """Computes a task's metrics from logits (or probabilities) and references."""

    def __init__(
        self,
        task: str,
        labels: Sequence[str],
        names: Sequence[str] | None = None,
        thresholds: dict[str, float] | None = None,
        external: dict[str, Any] | None = None,
    ) -> None:
        self.task = task
        self.labels = list(labels)
        self.num_labels = len(self.labels) if task != REGRESSION else 1
        shipped = {spec.name: spec for spec in TASK_METRICS[task] if not spec.binary_only or self.num_labels == 2}
        wanted = list(names) if names else list(shipped)
        self.external = dict(external or {})
        unknown = [name for name in wanted if name not in shipped and name not in self.external]
        if unknown:
            raise UserInputError(
                f"Unknown metric(s) for a {task} task: {', '.join(unknown)}. Available: {', '.join(shipped)}."
            )
        self.specs = [shipped[name] for name in wanted if name in shipped]
        self.modules = {spec.name: spec.module(keep_in_memory=True) for spec in self.specs}
        self.thresholds = dict(thresholds or {})

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs] + list(self.external)

    def spec(self, name: str) -> MetricSpec | None:
        return next((spec for spec in self.specs if spec.name == name), None)

    def scores(self, logits: np.ndarray) -> np.ndarray:
        return probabilities_from_logits(logits, self.task)

    def decisions(self, scores: np.ndarray, thresholds: dict[str, float] | None = None) -> np.ndarray:
        given = self.thresholds if thresholds is None else thresholds
        return decide(scores, self.task, threshold_vector(self.labels, given, self.task))

    def compute(
        self, logits: np.ndarray, references: np.ndarray, thresholds: dict[str, float] | None = None
    ) -> dict[str, float]:
        """The defined metric values (what Trainer logs); see `evaluate` for the reasons of the others."""
        return self.evaluate(logits, references, thresholds, details=False).metrics

    def evaluate(
        self,
        logits: np.ndarray,
        references: np.ndarray,
        thresholds: dict[str, float] | None = None,
        details: bool = True,
    ) -> EvaluationReport:
        """Metric values, undefined ones with reasons, and (details) per-class report, confusion, calibration."""
        scores = self.scores(logits)
        references = self.prepare_references(references)
        used_thresholds = self.thresholds if thresholds is None else thresholds
        decisions = self.decisions(scores, used_thresholds)
        values: dict[str, float] = {}
        undefined: dict[str, str] = {}
        for spec in self.specs:
            inputs = {"prediction_scores": scores} if spec.uses == SCORES else {"predictions": decisions}
            result = self.modules[spec.name].compute(references=references, **inputs, **spec.options)
            if result[spec.module.KEY] is None:
                undefined[spec.name] = result["reason"]
            else:
                values[spec.name] = result[spec.module.KEY]
        for name, module in self.external.items():
            values.update(_external_values(name, module, decisions, references))
        report = EvaluationReport(values, undefined, num_examples=len(references))
        if details and self.task != REGRESSION:
            report.per_class = self._per_class(decisions, scores, references, used_thresholds)
            report.confusion_matrix = self._confusion(decisions, references)
            report.calibration = calibration_table(scores, references, self.task)
        return report

    def score(self, name: str, scores: np.ndarray, decisions: np.ndarray, references: np.ndarray) -> float | None:
        """One shipped metric's value without the evaluate round trip (bootstrap and threshold search)."""
        spec = self.spec(name)
        if spec is None:
            raise KeyError(name)
        inputs = {"prediction_scores": scores} if spec.uses == SCORES else {"predictions": decisions}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.modules[name].score(references, **inputs, **spec.options)
        except m.Undefined:
            return None

    def prepare_references(self, references: np.ndarray) -> np.ndarray:
        references = np.asarray(references)
        if self.task == REGRESSION:
            return references.astype(np.float64).reshape(-1)
        return references.astype(np.int64)

    def _per_class(
        self, decisions: np.ndarray, scores: np.ndarray, references: np.ndarray, thresholds: dict[str, float]
    ) -> dict[str, dict]:
        label_ids = list(range(self.num_labels))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.task == MULTI_LABEL:
                precision, recall, f1, support = sk.precision_recall_fscore_support(
                    references, decisions, average=None, zero_division=0
                )
                auc = m.per_label_roc_auc(references, scores)
            else:
                precision, recall, f1, support = sk.precision_recall_fscore_support(
                    references, decisions, labels=label_ids, average=None, zero_division=0
                )
                auc = None
        report = {}
        for i, label in enumerate(self.labels):
            row = {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            if auc is not None:
                row["roc_auc"] = auc[i]
            if self.task == MULTI_LABEL:
                row["threshold"] = thresholds.get(label, MULTI_LABEL_THRESHOLD)
            report[label] = row
        return report

    def _confusion(self, decisions: np.ndarray, references: np.ndarray) -> Any:
        if self.task == MULTI_LABEL:
            matrices = sk.multilabel_confusion_matrix(references, decisions)
            return {
                label: {"tn": int(mat[0, 0]), "fp": int(mat[0, 1]), "fn": int(mat[1, 0]), "tp": int(mat[1, 1])}
                for label, mat in zip(self.labels, matrices)
            }
        # Rows: true label, columns: predicted label, both in label-id order.
        return sk.confusion_matrix(references, decisions, labels=list(range(self.num_labels))).tolist()


def calibration_table(scores: np.ndarray, references: np.ndarray, task: str) -> list[dict[str, float]]:
    """Reliability bins: single-label top-class confidence vs accuracy; multi-label p(label) vs frequency."""
    if task == MULTI_LABEL:
        return m.calibration_bins(scores.reshape(-1), references.reshape(-1).astype(float), m.DEFAULT_CALIBRATION_BINS)
    return m.top_label_bins(scores, references)


def _external_values(name: str, module: Any, decisions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """An `evaluate.load` module's numbers, named `NAME` (one value) or `NAME_KEY` (several)."""
    result = module.compute(predictions=decisions.tolist(), references=references.tolist())
    numbers = {key: float(value) for key, value in result.items() if isinstance(value, (int, float))}
    if len(numbers) == 1:
        return {name: next(iter(numbers.values()))}
    return {f"{name}_{key}": value for key, value in numbers.items()}


def metric_code_source(name: str) -> str:
    """Whose code `evaluate.load(name)` would run: a local script, a folder's NAME.py, or the Hub's."""
    path = Path(name).expanduser()
    if name.endswith(".py") and path.is_file():
        return f"the local script {path}"
    script = path / f"{path.name}.py"
    if script.is_file():
        return f"the local file {script}"
    return f"the Hugging Face Hub (evaluate-metric/{name} or the Space {name})"


def foreign_metric_refusal(name: str) -> UserInputError:
    """The refusal of a --metrics name the package does not ship, when the user has not said to trust its code."""
    return UserInputError(
        f"--metrics: '{name}' is not one of the package's metrics ({', '.join(all_metric_names())}). Loading it "
        f"would run Python code from {metric_code_source(name)} through evaluate.load, with this process's "
        "permissions. Pass --trust-remote-code (trust_remote_code=True in Python) if you trust that code, or choose "
        "one of the package's metrics."
    )


def load_external_metrics(
    names: Sequence[str], task: str, num_labels: int, trust_remote_code: bool = False
) -> dict[str, Any]:
    """`evaluate.load` for each asked name the package does not ship; a clear error when it cannot.

    Such a metric is code from a local folder or the Hub, run in this process: only with `trust_remote_code`.
    """
    import evaluate

    shipped = available_metrics(task, num_labels)
    loaded = {}
    for name in names:
        if name in shipped:
            continue
        if name in all_metric_names():
            raise UserInputError(
                f"--metrics: '{name}' does not apply to a {task} task with {num_labels} labels. "
                f"Available: {', '.join(shipped)}."
            )
        if not trust_remote_code:
            raise foreign_metric_refusal(name)
        try:
            loaded[name] = evaluate.load(name)
        except Exception as error:  # evaluate raises FileNotFoundError, ConnectionError, ValueError, ...
            raise UserInputError(
                f"--metrics: '{name}' is not one of the package's metrics ({', '.join(shipped)}), and "
                f"evaluate.load('{name}') could not load it from the Hugging Face Hub "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no detail'}). "
                "Check the name, or run with network access (HF_HUB_OFFLINE unset) to fetch it once."
            ) from None
    return loaded


def logits_of(predictions: Any) -> np.ndarray:
    """The logits among Trainer's predictions (a tuple when the model also returns hidden states)."""
    return predictions[0] if isinstance(predictions, tuple) else predictions


def reported_suite(
    task: str,
    labels: Sequence[str],
    names: Sequence[str] | None,
    primary: str,
    thresholds: dict[str, float] | None = None,
    trust_remote_code: bool = False,
) -> MetricSuite:
    """The suite a run reports: the named metrics plus the primary one (every shipped one when none are named).

    Names the package does not ship are loaded with `evaluate.load`, only with `trust_remote_code` (it runs their
    code); the loss is Trainer's, never the suite's.
    """
    names = list(names or [])
    if names and primary not in names and primary != "loss":
        names.insert(0, primary)
    external = load_external_metrics(names, task, len(labels), trust_remote_code) if names else {}
    return MetricSuite(task, labels, names or None, thresholds=thresholds, external=external)


class TrainerMetrics:
    """Trainer's `compute_metrics`: the suite's defined values; the reasons for undefined ones are kept.

    It never raises: the same Trainer scores the final splits, where an undefined value (a test split with one
    class) is reported, not fatal. During training, `trainer.PrimaryMetricCheck` refuses an evaluation whose
    primary metric is undefined (Trainer could not compare checkpoints by a missing value).
    """

    def __init__(self, suite: MetricSuite, chunk_aggregate: str = "mean") -> None:
        self.suite = suite
        self.chunk_aggregate = chunk_aggregate
        """How a chunked split's chunk logits become document logits (long_text.per_document)."""
        self.undefined: dict[str, str] = {}
        """The reasons of the last call's undefined metrics."""

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        logits, labels = per_document(
            logits_of(prediction.predictions), prediction.label_ids, self.chunk_aggregate, self.suite.task
        )
        report = self.suite.evaluate(logits, labels, details=False)
        self.undefined = dict(report.undefined)
        return report.metrics
