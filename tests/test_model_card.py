"""The model card written after every run: parseable metadata, base model by Hub id, loading advice per folder kind."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard

from nlp_transfer.hub import write_model_card

METRICS = {
    "task": "single_label",
    "strategy": "lora",
    "primary_metric": "accuracy",
    "eval": {"accuracy": 0.875, "macro_f1": 0.8571, "loss": 0.4},
    "trainable_parameters": 74498,
    "total_parameters": 22788484,
    "labels": ["billing", "delivery", "technical"],
    "data_sources": {"train": "train.csv", "validation": "validation.csv"},
    "num_examples": {"train": 300, "validation": 90},
    "max_length": 512,
}


def test_adapter_card_names_the_hub_base_and_says_how_to_load_with_peft(tmp_path: Path) -> None:
    path = write_model_card(tmp_path, {**METRICS, "adapter": True}, base_model="sentence-transformers/all-MiniLM-L6-v2")
    card = ModelCard.load(path)
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.pipeline_tag == "text-classification"
    assert {"nlp-transfer", "strategy-lora"} <= set(card.data.tags)
    assert "AutoPeftModelForSequenceClassification" in card.text and "num_labels=3" in card.text
    assert "| **accuracy** | 0.8750 |" in card.text  # the primary metric first, one column per split
    assert card.data.library_name == "peft"
    assert "billing, delivery, technical" in card.text


def test_plain_card_says_how_to_load_with_pipeline(tmp_path: Path) -> None:
    path = write_model_card(tmp_path, {**METRICS, "strategy": "full", "adapter": False}, base_model=None)
    card = ModelCard.load(path)
    assert 'pipeline("text-classification"' in card.text
    assert "AutoPeftModel" not in card.text
