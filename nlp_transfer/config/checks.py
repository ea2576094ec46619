"""The helpers every argument group shares: an option's command-line spelling and text, comma-separated and
class-weight values, and the `_check_*` refusals of values outside their range or unknown to the package."""

import difflib
import math
from typing import Any

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics.suite import all_metric_names, foreign_metric_refusal

BALANCED = "balanced"


def option_flag(name: str) -> str:
    """The command-line spelling of an option: lora_r -> --lora-r."""
    return "--" + name.replace("_", "-")


def option_text(value: Any) -> str:
    """An option as its text: TrainingArguments turns some (eval_strategy, optim, ...) into enums, some not."""
    return str(getattr(value, "value", value))


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


REPORTING_PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}


def _check_reporting_integrations(report_to: list[str] | str | None) -> None:
    """A clear install hint instead of Trainer's RuntimeError when a --report-to backend is missing."""
    import importlib.util

    for name in [report_to] if isinstance(report_to, str) else report_to or []:
        modules = REPORTING_PACKAGES.get(name)
        if modules and not any(importlib.util.find_spec(module) for module in modules):
            extra = " (or: pip install 'nlp-transfer[tensorboard]')" if name == "tensorboard" else ""
            raise UserInputError(f"--report-to {name} needs the {modules[0]} package: pip install {modules[0]}{extra}.")


def _check_foreign_metrics(names: list[str], trust_remote_code: bool) -> None:
    """--metrics names the package does not ship run code through evaluate.load: only with --trust-remote-code."""
    if trust_remote_code:
        return
    foreign = [name for name in names if name not in all_metric_names()]
    if foreign:
        raise foreign_metric_refusal(foreign[0])


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
