"""The model card, rendered from `model_cards/` with huggingface_hub's ModelCard."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

TEMPLATE = "classifier.md"
TASK_DESCRIPTIONS = {
    "single_label": "single-label text classification",
    "multi_label": "multi-label text classification (each label decided on its own)",
    "regression": "text regression (one real-valued score)",
}


def template_path(name: str = TEMPLATE) -> Path:
    return Path(str(resources.files("nlp_transfer.model_cards") / name))


def render_model_card(metrics: dict[str, Any], base_model: str | None, repo_id: str = "PATH/TO/MODEL") -> ModelCard:
    """A card whose metadata and results table come from `metrics` (the run's metrics.json)."""
    primary = metrics["primary_metric"]
    card_data = ModelCardData(
        library_name="transformers",
        base_model=base_model,
        pipeline_tag="text-classification",
        tags=["nlp-transfer", f"strategy-{metrics['strategy']}", "text-classification"],
        metrics=[primary],
    )
    rows = [
        {"split": split, "metric": name, "value": f"{value:.4f}"}
        for split in ("eval", "test")
        for name, value in metrics.get(split, {}).items()
        if isinstance(value, float) and not name.endswith(("runtime", "per_second"))
    ]
    trainable, total = metrics["trainable_parameters"], metrics["total_parameters"]
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path()),
        model_name=f"{metrics['task'].replace('_', '-')} classifier ({metrics['strategy']})",
        base_model=base_model or "a local checkpoint",
        base_model_url=f"https://huggingface.co/{base_model}" if base_model else "#",
        strategy=metrics["strategy"],
        task_description=TASK_DESCRIPTIONS[metrics["task"]],
        labels_text=", ".join(metrics.get("labels") or []) or "one score",
        trainable_parameters=f"{trainable:,}",
        total_parameters=f"{total:,}",
        trainable_share=f"{100 * trainable / total:.1f}%",
        primary_metric=primary,
        result_rows=rows,
        data_sources=metrics.get("data_sources", {}),
        num_examples=metrics.get("num_examples", {}),
        repo_id=repo_id,
        max_length=metrics.get("max_length", 512),
        is_adapter=bool(metrics.get("adapter")),
        num_labels=len(metrics.get("labels") or []) or 1,
    )


def write_model_card(folder: Path, metrics: dict[str, Any], base_model: str | None) -> Path:
    path = folder / "README.md"
    render_model_card(metrics, base_model).save(path)
    return path
