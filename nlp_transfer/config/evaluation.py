"""The evaluation argument group: `EvaluationArguments` (metrics to report, decision thresholds, calibration,
class weights)."""

from dataclasses import dataclass, field

from nlp_transfer.config.checks import comma_separated, parse_class_weights
from nlp_transfer.errors import UserInputError
from nlp_transfer.tasks import REGRESSION


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
