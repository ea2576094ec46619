"""Phase 2 of a run, `read_data`: the data read and validated, the primary metric, metric suite and loss weights
chosen from its labels, the texts tokenized and their token lengths reported (`RunData`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, get_args

from nlp_transfer.config.data import LongTextMode
from nlp_transfer.config.evaluation import EvaluationArguments
from nlp_transfer.data.columns import column_values
from nlp_transfer.data.labels import LabelSchema
from nlp_transfer.data.long_text import length_report, token_lengths, truncation_advice
from nlp_transfer.data.prepare import PreparedData, load_data
from nlp_transfer.data.tokenize import resolve_max_length, tokenize
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics import (
    MetricSuite,
    PrimaryMetric,
    available_metrics,
    reported_suite,
    resolve_primary_metric,
)
from nlp_transfer.evaluation.metrics.thresholds import check_tunable
from nlp_transfer.modeling.checkpoints import load_tokenizer
from nlp_transfer.training.class_weights import LossWeights, label_counts, resolve_loss_weights
from nlp_transfer.training.plan import RunPlan

logger = logging.getLogger(__name__)


@dataclass
class RunData:
    """Phase 2: the validated data, tokenized, and what the labels decide (primary metric, suite, weights)."""

    data: PreparedData
    tokenizer: Any
    max_length: int
    encoded: Any
    primary: PrimaryMetric
    suite: MetricSuite
    label_counts: list[int] | None
    loss_weights: LossWeights | None
    text_lengths: dict[str, Any] | None = None
    """How long the texts were and how they were cut (`text_lengths`): metrics.json's `long_text`."""


def read_data(plan: RunPlan) -> RunData:
    """Read and validate the data, choose the primary metric from its labels, and tokenize it."""
    config = plan.config
    data = load_data(config.data, seed=config.training.seed)
    _log_data(data)
    schema = data.schema
    counts = label_counts(schema.task, data.splits["train"]["labels"], schema.num_labels)
    primary = resolve_primary_metric(schema.task, counts, config.training.metric_for_best_model)
    logger.info("Primary metric %s: %s", primary.name, primary.reason)
    suite = _metric_suite(config.evaluation, schema, primary, config.model.trust_remote_code)
    if config.evaluation.tune_threshold:
        check_tunable(suite, primary.name)
    loss_weights = resolve_loss_weights(
        config.evaluation.class_weights, schema.task, schema.names, counts, len(data.splits["train"])
    )
    if loss_weights is not None:
        logger.info("Loss %s (%s): %s", loss_weights.kind, loss_weights.mode, loss_weights.to_dict()["weights"])
    tokenizer = load_tokenizer(plan.checkpoint)
    max_length = resolve_max_length(tokenizer, config.data.max_length)
    encoded = tokenize(data, tokenizer, max_length, config.data.long_text, config.data.chunk_stride)
    lengths = text_lengths(data, tokenizer, max_length, config.data.long_text)
    if config.data.long_text == "chunk":
        for name, report in lengths["splits"].items():
            report["chunks"] = len(encoded[name])
            logger.info("Chunks of %s: %d windows from %d texts", name, report["chunks"], report["documents"])
        lengths.update(_chunk_settings(config.data))
    return RunData(data, tokenizer, max_length, encoded, primary, suite, counts, loss_weights, lengths)


def text_lengths(data: PreparedData, tokenizer: Any, max_length: int, long_text: str) -> dict[str, Any]:
    """Each split's token lengths and share of texts longer than `max_length`, logged; advice when many are cut.

    metrics.json keeps it (`long_text`): how much of the data the model never read is part of its result.
    """
    splits = {}
    for name, split in data.splits.items():
        texts = [str(t) for t in column_values(split, data.text_column)]
        pairs = [str(t) for t in column_values(split, data.text_pair_column)] if data.text_pair_column else None
        lengths = token_lengths(tokenizer, texts, pairs)
        report = length_report(lengths, max_length)
        tokens = report["tokens"]
        estimated = report.get("estimated", 0)  # huge texts: counted on a sample, scaled by their length
        logger.info(
            "Token lengths of %s (%d texts): median %g, p90 %g, p99 %g, max %d; %.1f%% longer than %d (%s)%s",
            name,
            report["documents"],
            tokens["p50"],
            tokens["p90"],
            tokens["p99"],
            tokens["max"],
            100 * report["truncated_share"],
            max_length,
            long_text,
            f"; {estimated} of these lengths estimated from a sample of the text" if estimated else "",
        )
        splits[name] = report
    most_cut = max(splits, key=lambda name: splits[name]["truncated_share"])
    advice = truncation_advice(splits[most_cut], long_text, offered=get_args(LongTextMode))
    if advice:
        advice = f"In {most_cut}, {advice}"
        logger.warning("%s", advice)
    return {"mode": long_text, "max_length": max_length, "splits": splits, "advice": advice}


def _chunk_settings(data: Any) -> dict[str, Any]:
    """--chunk-stride and --chunk-aggregate for the saved settings; none unless the texts were chunked."""
    if data.long_text != "chunk":
        return {}
    return {"chunk_stride": data.chunk_stride, "chunk_aggregate": data.chunk_aggregate}


# ------------------------------------------------------------------------------------------- helpers


def _log_data(data: PreparedData) -> None:
    schema = data.schema
    sizes = ", ".join(f"{name} {len(split):,}" for name, split in data.splits.items())
    labels = f"{schema.num_labels} labels: {', '.join(schema.names[:8])}" if schema.names else "a score"
    logger.info("Task %s with %s; rows: %s", schema.task, labels, sizes)
    for name, source in data.sources.items():
        logger.info("  %s from %s", name, source)


def _metric_suite(
    evaluation: EvaluationArguments, schema: LabelSchema, primary: PrimaryMetric, trust_remote_code: bool = False
) -> MetricSuite:
    """The reported metrics: --metrics (plus the primary one) or every shipped metric of the task."""
    names = evaluation.metric_names()
    shipped = available_metrics(schema.task, schema.num_labels)
    if primary.name != "loss" and primary.name not in shipped and primary.name not in names:
        raise UserInputError(
            f"--metric-for-best-model {primary.name} is not a metric of this {schema.task} task. Choose one of: "
            f"{', '.join(shipped)}, or loss; a metric from the Hub must also be named in --metrics."
        )
    return reported_suite(
        schema.task, list(schema.id2label.values()), names, primary.name, trust_remote_code=trust_remote_code
    )
