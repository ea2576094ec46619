"""The model card, rendered from `model_cards/` with huggingface_hub's ModelCard after every run.

Its YAML metadata (base model by Hub id, tags, datasets, license, `model-index` with the evaluation
results) is what the Hub indexes; its body says what the model does, how it was trained, how well it
does per class, and how to load it. Everything comes from the run's record (`RunRecord`, metrics.json).

This module owns the card and its repository placeholder: `push` imports it, never the other way round.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from nlp_transfer.evaluation.record import RECORD_SPLITS, RunRecord
from nlp_transfer.hub.public import public_text
from nlp_transfer.outputs import CARD_FILE, CONFIG_FILE, MERGED_FOLDER

TEMPLATE = "classifier.md"
# Where a card written before the repository is known names it; `card_for_repository` fills it in.
REPO_PLACEHOLDER = "PATH/TO/MODEL"
TASK_DESCRIPTIONS = {
    "single_label": "single-label text classification",
    "multi_label": "multi-label text classification (each label decided on its own)",
    "regression": "text regression (one real-valued score)",
}
STRATEGY_DESCRIPTIONS = {
    "full": "every weight fine-tuned",
    "freeze": "embeddings and lower layers frozen, top layers and head trained",
    "lora": "LoRA adapter matrices and the head trained, the encoder frozen",
    "hybrid": "LoRA below, the top layers and head trained in full",
    "scratch": "the same architecture trained from random weights (a baseline)",
}
CARVED_FROM_TRAIN = re.compile(r"% of train \(")


def template_path(name: str = TEMPLATE) -> Path:
    return Path(str(resources.files("nlp_transfer.model_cards") / name))


def card_for_repository(card_text: str, repo_id: str) -> str:
    """A card's text naming the repository `repo_id` where the card written at training time has the placeholder."""
    return card_text.replace(REPO_PLACEHOLDER, repo_id)


def _dataset_identity(record: RunRecord, split: str) -> tuple[str, str, str | None]:
    """(dataset_type, dataset_name, config) of one split for model-index: the Hub id, else the split's file."""
    if record.dataset and record.dataset.name:
        return record.dataset.name, record.dataset.name, record.dataset.config
    sources = record.data_sources or {}
    source = str(sources.get(split) or "")
    if not source or CARVED_FROM_TRAIN.search(source):
        # Validation held out of the training file: named after that file.
        return "local", f"{_file_name(sources.get('train'))} (held-out part)", None
    return "local", _file_name(source), None


def _file_name(source: Any) -> str:
    return Path(str(source)).name if source else "local data"


def eval_results(record: RunRecord) -> list[EvalResult]:
    """One model-index entry per (split, metric), with the values exactly as in metrics.json."""
    results = []
    for key, split in RECORD_SPLITS.items():
        dataset_type, dataset_name, dataset_config = _dataset_identity(record, split)
        for name, value in record.results(key).items():
            results.append(
                EvalResult(
                    task_type="text-classification",
                    dataset_type=dataset_type,
                    dataset_name=dataset_name,
                    dataset_config=dataset_config,
                    dataset_split=split,
                    metric_type=name,
                    metric_value=value,
                )
            )
    return results


def _model_name(record: RunRecord, repo_id: str | None) -> str:
    return (repo_id or "").split("/")[-1] or f"{record.task.replace('_', '-')}-{record.strategy}"


def _card_data(
    record: RunRecord, base_model: str | None, license: str | None, model_name: str, results: list[EvalResult]
) -> ModelCardData:
    """The card's YAML metadata: what the Hub indexes and filters by."""
    return ModelCardData(
        # An adapter folder loads through peft; a plain one through transformers alone.
        library_name="peft" if record.adapter else "transformers",
        base_model=base_model,
        pipeline_tag="text-classification",
        tags=["nlp-transfer", f"strategy-{record.strategy}", "text-classification", record.task.replace("_", "-")],
        datasets=[record.dataset.name] if record.dataset and record.dataset.name else None,
        license=license,
        metrics=sorted({result.metric_type for result in results}) or [record.primary_metric],
        model_name=model_name,
        eval_results=results or None,
    )


def _result_table(record: RunRecord) -> dict[str, Any]:
    """The results table: one column per evaluated split, one row per metric, the primary metric first."""
    values = {key: record.results(key) for key in RECORD_SPLITS}
    keys = [key for key in RECORD_SPLITS if values[key]]
    names = list(dict.fromkeys(name for key in keys for name in values[key]))
    names.sort(key=lambda name: name != record.primary_metric)
    rows = [
        {
            "metric": f"**{name}**" if name == record.primary_metric else name,
            "values": [f"{values[key][name]:.4f}" if name in values[key] else "n/a" for key in keys],
        }
        for name in names
    ]
    return {"result_splits": [RECORD_SPLITS[key] for key in keys], "result_rows": rows}


def _per_class_rows(evaluated: dict[str, Any]) -> list[dict[str, str]]:
    per_class = evaluated.get("per_class")
    if not isinstance(per_class, dict):
        return []
    return [
        {
            "label": str(label).replace("|", "\\|"),  # a | in a label would end the table cell
            "precision": f"{row['precision']:.4f}",
            "recall": f"{row['recall']:.4f}",
            "f1": f"{row['f1']:.4f}",
            "support": str(row["support"]),
        }
        for label, row in per_class.items()
    ]


def _details(record: RunRecord) -> dict[str, Any]:
    """Per class, undefined values and calibration of the test split, or of validation without one."""
    evaluated = record.split(record.detail_split)
    return {
        "per_class_split": RECORD_SPLITS[record.detail_split],
        "per_class_rows": _per_class_rows(evaluated),
        "undefined": evaluated.get("undefined") or {},
        "ece": evaluated.get("ece"),
        **_calibration(record),
    }


def _calibration(record: RunRecord) -> dict[str, Any]:
    """The temperature folded into the weights, and the ECE it changed, on the detail split."""
    calibration = record.calibration or {}
    figures = calibration.get(record.detail_split) or {}
    temperature = calibration.get("temperature")
    return {
        "temperature": temperature if isinstance(temperature, (int, float)) else None,
        "ece_before": (figures.get("before") or {}).get("ece"),
        "calibration_rows": (calibration.get("fitted_on") or {}).get("rows"),
        "conformal_rows": (record.conformal or {}).get("rows"),
    }


def _hyperparameters(record: RunRecord) -> dict[str, Any]:
    """The Trainer settings that were recorded, then the strategy's own settings not among them."""
    recorded = dataclasses.asdict(record.hyperparameters) if record.hyperparameters else {}
    table = {name: value for name, value in recorded.items() if value is not None}
    for name, value in (record.strategy_settings or {}).items():
        if name not in table and name != "unfreeze_history" and isinstance(value, (int, float, str, bool)):
            table[f"strategy: {name}"] = value
    return table


def _description(record: RunRecord, base_model: str | None) -> dict[str, Any]:
    """What the model is: its base, task, strategy, labels and how much of it was trained."""
    trainable, total = record.trainable_parameters, record.total_parameters
    return {
        "base_model": base_model or "a local checkpoint",
        "base_model_url": f"https://huggingface.co/{base_model}" if base_model else "#",
        "strategy": record.strategy,
        "strategy_description": STRATEGY_DESCRIPTIONS.get(record.strategy, record.strategy),
        "task": record.task,
        "task_description": TASK_DESCRIPTIONS[record.task],
        "labels": record.labels or [],
        "trainable_parameters": f"{trainable:,}",
        "total_parameters": f"{total:,}",
        "trainable_share": f"{100 * trainable / total:.1f}%" if total else "n/a",
        "thresholds": record.decision_thresholds,
        **_pooling(record),
    }


def _pooling(record: RunRecord) -> dict[str, Any]:
    """How the head reads the encoder; a pooled head needs nlp_transfer imported to load in transformers."""
    pooling = record.pooling or {}
    return {
        "pooling": pooling.get("mode"),
        "pooling_reason": pooling.get("reason"),
        "pooled_head": bool(pooling) and not pooling.get("own_head", True),
    }


def _training(record: RunRecord) -> dict[str, Any]:
    """How it was trained: the data (paths reduced to file names), label counts, loss weights, settings."""
    return {
        "data_sources": {name: public_text(str(source)) for name, source in (record.data_sources or {}).items()},
        "num_examples": record.num_examples or {},
        "train_label_counts": record.train_label_counts,
        "class_weights": record.class_weights,
        "hyperparameters": _hyperparameters(record),
        "max_length": record.max_length if record.max_length is not None else 512,
        "long_text_reading": _long_text_reading(record.long_text),
    }


def _long_text_reading(long_text: dict[str, Any] | None) -> str:
    """How a text over max_length is read, for the card; `pipeline` only truncates the end, so the others say so."""
    mode = (long_text or {}).get("mode", "truncate-head")
    if mode == "truncate-head":
        return "truncated: their end is not read"
    reading = {
        "truncate-tail": "cut from the start: only their last tokens are read",
        "head-tail": "read by their start and their end (Sun et al. 2019): their middle is not read",
        "chunk": (
            f"read whole, in windows sharing {long_text.get('chunk_stride', 0)} tokens, and the windows' logits "
            f"combined by {long_text.get('chunk_aggregate', 'mean')}"
        ),
    }.get(mode, mode)
    return (
        f"{reading} (`--long-text {mode}`). nlp-transfer's `load_classifier` reads them so; `transformers.pipeline` "
        "would truncate their end instead"
    )


def render_model_card(
    record: RunRecord,
    base_model: str | None,
    repo_id: str | None = None,
    license: str | None = None,
    merged: bool = False,
) -> ModelCard:
    """A card whose metadata, results and training details come from the run's record; `merged` says that an
    adapter's folder also holds the merged model (--merge-lora)."""
    model_name = _model_name(record, repo_id)
    return ModelCard.from_template(
        _card_data(record, base_model, license, model_name, eval_results(record)),
        template_path=str(template_path()),
        model_name=model_name,
        primary_metric=record.primary_metric,
        primary_metric_reason=record.primary_metric_reason or "the task's default",
        repo_id=repo_id or REPO_PLACEHOLDER,
        is_adapter=record.adapter,
        merged=merged,
        num_labels=len(record.labels or []) or 1,
        **_description(record, base_model),
        **_result_table(record),
        **_details(record),
        **_training(record),
    )


def write_model_card(
    folder: Path,
    record: RunRecord,
    base_model: str | None,
    repo_id: str | None = None,
    license: str | None = None,
) -> Path:
    path = Path(folder) / CARD_FILE
    merged = (Path(folder) / MERGED_FOLDER / CONFIG_FILE).is_file()
    render_model_card(record, base_model, repo_id, license, merged).save(path)
    return path
