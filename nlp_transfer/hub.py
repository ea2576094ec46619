"""The model card, rendered from `model_cards/` with huggingface_hub's ModelCard after every run.

Its YAML metadata (base model by Hub id, tags, datasets, license, `model-index` with the evaluation
results) is what the Hub indexes; its body says what the model does, how it was trained, how well it
does per class, and how to load it. Everything comes from the run's metrics.json.
"""

from __future__ import annotations

import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from nlp_transfer.push import REPO_PLACEHOLDER, public_text

TEMPLATE = "classifier.md"
CARD_FILE = "README.md"
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
SPLITS = {"eval": "validation", "test": "test"}
CARVED_FROM_TRAIN = re.compile(r"% of train \(")
# Figures in an evaluation dict that describe the run, not the model's quality.
NOT_RESULTS = ("loss", "runtime", "samples_per_second", "steps_per_second", "num_examples", "epoch")


def template_path(name: str = TEMPLATE) -> Path:
    return Path(str(resources.files("nlp_transfer.model_cards") / name))


def result_values(metrics: dict[str, Any], split: str) -> dict[str, float]:
    """The metric values of one split of metrics.json ('eval' or 'test'): finite numbers, no timings.

    The loss counts as a result only when it is the primary metric (--metric-for-best-model loss).
    """
    values = metrics.get(split) or {}
    excluded = [name for name in NOT_RESULTS if not (name == "loss" and metrics.get("primary_metric") == "loss")]
    return {
        name: float(value)
        for name, value in values.items()
        if isinstance(value, (int, float))
        and not isinstance(value, bool)
        and name not in excluded
        and math.isfinite(value)
    }


def _dataset_identity(metrics: dict[str, Any], split: str) -> tuple[str, str, str | None]:
    """(dataset_type, dataset_name, config) of one split for model-index: the Hub id, else the split's file."""
    dataset = metrics.get("dataset") or {}
    if dataset.get("name"):
        return dataset["name"], dataset["name"], dataset.get("config")
    sources = metrics.get("data_sources") or {}
    source = str(sources.get(split) or "")
    if not source or CARVED_FROM_TRAIN.search(source):
        # Validation held out of the training file: named after that file.
        return "local", f"{_file_name(sources.get('train'))} (held-out part)", None
    return "local", _file_name(source), None


def _file_name(source: Any) -> str:
    return Path(str(source)).name if source else "local data"


def eval_results(metrics: dict[str, Any]) -> list[EvalResult]:
    """One model-index entry per (split, metric), with the values exactly as in metrics.json."""
    results = []
    for split, split_name in SPLITS.items():
        dataset_type, dataset_name, dataset_config = _dataset_identity(metrics, split_name)
        for name, value in result_values(metrics, split).items():
            results.append(
                EvalResult(
                    task_type="text-classification",
                    dataset_type=dataset_type,
                    dataset_name=dataset_name,
                    dataset_config=dataset_config,
                    dataset_split=split_name,
                    metric_type=name,
                    metric_value=value,
                )
            )
    return results


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


def _hyperparameters(metrics: dict[str, Any]) -> dict[str, Any]:
    table = dict(metrics.get("hyperparameters") or {})
    for name, value in (metrics.get("strategy_settings") or {}).items():
        if name not in table and name != "unfreeze_history" and isinstance(value, (int, float, str, bool)):
            table[f"strategy: {name}"] = value
    return table


def render_model_card(
    metrics: dict[str, Any],
    base_model: str | None,
    repo_id: str | None = None,
    license: str | None = None,
) -> ModelCard:
    """A card whose metadata, results and training details come from `metrics` (the run's metrics.json)."""
    primary = metrics["primary_metric"]
    is_adapter = bool(metrics.get("adapter"))
    labels = metrics.get("labels") or []
    dataset = (metrics.get("dataset") or {}).get("name")
    results = eval_results(metrics)
    model_name = (repo_id or "").split("/")[-1] or f"{metrics['task'].replace('_', '-')}-{metrics['strategy']}"
    card_data = ModelCardData(
        # An adapter folder loads through peft; a plain one through transformers alone.
        library_name="peft" if is_adapter else "transformers",
        base_model=base_model,
        pipeline_tag="text-classification",
        tags=[
            "nlp-transfer",
            f"strategy-{metrics['strategy']}",
            "text-classification",
            metrics["task"].replace("_", "-"),
        ],
        datasets=[dataset] if dataset else None,
        license=license,
        metrics=sorted({result.metric_type for result in results}) or [primary],
        model_name=model_name,
        eval_results=results or None,
    )
    # Details (per class, undefined values, calibration) of the test split, or of validation without one.
    detail_split = "test" if metrics.get("test") else "eval"
    evaluated = metrics.get(detail_split) or {}
    values = {split: result_values(metrics, split) for split in SPLITS}
    splits = [split for split in SPLITS if values[split]]
    names = list(dict.fromkeys(name for split in splits for name in values[split]))
    names = sorted(names, key=lambda name: name != primary)  # the primary metric first
    rows = [
        {
            "metric": f"**{name}**" if name == primary else name,
            "values": [f"{values[split][name]:.4f}" if name in values[split] else "n/a" for split in splits],
        }
        for name in names
    ]
    trainable, total = metrics["trainable_parameters"], metrics["total_parameters"]
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path()),
        model_name=model_name,
        base_model=base_model or "a local checkpoint",
        base_model_url=f"https://huggingface.co/{base_model}" if base_model else "#",
        strategy=metrics["strategy"],
        strategy_description=STRATEGY_DESCRIPTIONS.get(metrics["strategy"], metrics["strategy"]),
        task=metrics["task"],
        task_description=TASK_DESCRIPTIONS[metrics["task"]],
        labels=labels,
        trainable_parameters=f"{trainable:,}",
        total_parameters=f"{total:,}",
        trainable_share=f"{100 * trainable / total:.1f}%",
        primary_metric=primary,
        primary_metric_reason=metrics.get("primary_metric_reason") or "the task's default",
        result_splits=[SPLITS[split] for split in splits],
        result_rows=rows,
        per_class_split=SPLITS[detail_split],
        per_class_rows=_per_class_rows(evaluated),
        undefined=evaluated.get("undefined") or {},
        ece=evaluated.get("ece"),
        thresholds=metrics.get("decision_thresholds"),
        class_weights=metrics.get("class_weights"),
        train_label_counts=metrics.get("train_label_counts"),
        hyperparameters=_hyperparameters(metrics),
        data_sources={name: public_text(str(source)) for name, source in (metrics.get("data_sources") or {}).items()},
        num_examples=metrics.get("num_examples", {}),
        repo_id=repo_id or REPO_PLACEHOLDER,
        max_length=metrics.get("max_length", 512),
        is_adapter=is_adapter,
        num_labels=len(labels) or 1,
    )


def write_model_card(
    folder: Path,
    metrics: dict[str, Any],
    base_model: str | None,
    repo_id: str | None = None,
    license: str | None = None,
) -> Path:
    path = folder / CARD_FILE
    render_model_card(metrics, base_model, repo_id, license).save(path)
    return path
