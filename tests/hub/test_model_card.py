"""The model card written after every run: parseable metadata, base model by Hub id, loading advice per folder kind."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

from huggingface_hub import ModelCard

from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.hub import card as hub
from nlp_transfer.hub import public
from nlp_transfer.hub.card import REPO_PLACEHOLDER, card_for_repository, render_model_card, write_model_card
from nlp_transfer.hub.push import default_commit_message

# A metrics.json written by version 0.1.0, before the run record was typed: it must still render.
V010_METRICS = Path(__file__).resolve().parents[1] / "fixtures" / "metrics_v0.1.0.json"

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


def _record(**changes: object) -> RunRecord:
    return RunRecord.from_dict({**METRICS, **changes})


def test_adapter_card_names_the_hub_base_and_says_how_to_load_with_peft(tmp_path: Path) -> None:
    path = write_model_card(tmp_path, _record(adapter=True), base_model="sentence-transformers/all-MiniLM-L6-v2")
    card = ModelCard.load(path)
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.pipeline_tag == "text-classification"
    assert {"nlp-transfer", "strategy-lora"} <= set(card.data.tags)
    assert "AutoPeftModelForSequenceClassification" in card.text and "num_labels=3" in card.text
    assert "| **accuracy** | 0.8750 |" in card.text  # the primary metric first, one column per split
    assert card.data.library_name == "peft"
    assert "billing, delivery, technical" in card.text


def test_plain_card_says_how_to_load_with_pipeline(tmp_path: Path) -> None:
    path = write_model_card(tmp_path, _record(strategy="full", adapter=False), base_model=None)
    card = ModelCard.load(path)
    assert 'pipeline("text-classification"' in card.text
    assert "AutoPeftModel" not in card.text


def test_hyperparameters_table_shows_the_recorded_settings_and_the_strategy_settings() -> None:
    record = _record(
        hyperparameters={"learning_rate": 0.001, "seed": 42},  # the others were not recorded: not shown
        strategy_settings={"lora_r": 8, "learning_rate": 0.5, "target_modules": ["query"], "unfreeze_history": []},
    )
    text = render_model_card(record, base_model=None).text
    assert "| learning_rate | 0.001 |" in text and "| seed | 42 |" in text
    assert "| strategy: lora_r | 8 |" in text
    assert "None" not in text and "strategy: learning_rate" not in text and "target_modules" not in text


def test_a_card_written_by_version_0_1_0_renders_from_its_metrics_json() -> None:
    record = RunRecord.from_dict(json.loads(V010_METRICS.read_text(encoding="utf-8")))
    card = render_model_card(record, base_model=record.base_model)
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert (
        "[sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2)"
        in (card.text)
    )
    assert card.data.library_name == "peft"
    assert "Primary metric: **accuracy**" in card.text and "| **accuracy** | 0.3778 |" in card.text
    assert "| strategy: lora_r | 8 |" in card.text
    assert "/home/user" not in str(card), "no path of the training machine"
    assert REPO_PLACEHOLDER in card.text


def test_the_commit_message_of_a_version_0_1_0_folder_names_strategy_and_primary_metric(tmp_path: Path) -> None:
    shutil.copy(V010_METRICS, tmp_path / "metrics.json")
    expected = "Upload nlp-transfer classifier (strategy lora, accuracy=0.3778 on validation)"
    assert default_commit_message(tmp_path) == expected


def test_the_card_names_the_repository_where_the_placeholder_is() -> None:
    text = render_model_card(_record(adapter=True), base_model=None).text
    named = card_for_repository(text, "me/support-lora")
    assert REPO_PLACEHOLDER not in named and 'from_pretrained("me/support-lora", num_labels=3)' in named
    assert 'load_classifier("me/support-lora")' in named


def _imported_modules(module: object) -> set[str]:
    tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_card_module_does_not_import_push() -> None:
    """push imports the card module (for the repository placeholder), never the other way round."""
    imported = _imported_modules(hub)
    assert not any(name == "nlp_transfer.hub.push" or name.startswith("nlp_transfer.hub.push.") for name in imported)


def test_public_is_a_leaf_that_imports_only_the_file_names() -> None:
    ours = {name.split(".")[1] for name in _imported_modules(public) if name.startswith("nlp_transfer.")}
    assert ours <= {"outputs"}


def test_the_card_says_how_long_texts_were_read_and_that_pipeline_would_truncate_them() -> None:
    assert (
        "Texts longer than 512 tokens are truncated: their end is not read."
        in render_model_card(_record(), base_model=None).text
    )
    chunked = {"mode": "chunk", "max_length": 512, "chunk_stride": 64, "chunk_aggregate": "attention"}
    text = render_model_card(_record(long_text=chunked), base_model=None).text
    assert (
        "Texts longer than 512 tokens are read whole, in windows sharing 64 tokens, and the windows' logits combined "
        "by attention (`--long-text chunk`). nlp-transfer's `load_classifier` reads them so; `transformers.pipeline` "
        "would truncate their end instead."
    ) in " ".join(text.split())
