"""Evaluation and prediction batch rows longest first, and hand results back in the input order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, TrainingArguments

from nlp_transfer.data.tokenize import longest_first
from nlp_transfer.inference.predict import Classifier
from nlp_transfer.training.trainer import TransferTrainer

TEXTS = [
    "short",
    "a much longer text than the others, with many more words in it",
    "a text of middling length",
    "x",
    "another fairly long sentence made of words",
]
LABELS = [0, 1, 2, 0, 1]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_checkpoint: Path):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint, num_labels=3).eval()
    return model, AutoTokenizer.from_pretrained(tiny_checkpoint)


def _widths_seen(model: torch.nn.Module) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    """The padded width of every batch the model is called on."""
    widths: list[int] = []
    handle = model.register_forward_pre_hook(
        lambda _, args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    return widths, handle


def _one_by_one(model: torch.nn.Module, tokenizer) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(**tokenizer([text], return_tensors="pt")).logits.numpy() for text in TEXTS])


def test_longest_first_is_a_stable_descending_order() -> None:
    assert longest_first([3, 5, 5, 1]).tolist() == [1, 2, 0, 3]
    assert longest_first([]).tolist() == []


def test_classifier_batches_longest_first_and_returns_rows_in_input_order(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    widths, handle = _widths_seen(model)
    try:
        logits = Classifier.from_model(model, tokenizer).logits(TEXTS, batch_size=2)
    finally:
        handle.remove()
    assert widths == sorted(widths, reverse=True) and len(widths) == 3
    np.testing.assert_allclose(logits, _one_by_one(model, tokenizer), atol=1e-5)


def test_trainer_predict_batches_longest_first_and_restores_row_order(model_and_tokenizer, tmp_path: Path) -> None:
    model, tokenizer = model_and_tokenizer
    encoded = Dataset.from_dict({"text": TEXTS, "labels": LABELS}).map(
        lambda rows: tokenizer(rows["text"]), batched=True
    )
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=2, report_to=[], use_cpu=True)
    trainer = TransferTrainer(
        model=model, args=args, data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer
    )
    widths, handle = _widths_seen(model)
    try:
        output = trainer.predict(encoded.remove_columns("text"))
    finally:
        handle.remove()
    assert widths == sorted(widths, reverse=True) and len(widths) == 3
    assert output.label_ids.tolist() == LABELS
    np.testing.assert_allclose(output.predictions, _one_by_one(model, tokenizer), atol=1e-5)


def test_row_order_is_left_alone_where_it_cannot_be_restored(model_and_tokenizer, tmp_path: Path) -> None:
    model, tokenizer = model_and_tokenizer
    encoded = Dataset.from_dict({"labels": LABELS, **tokenizer(TEXTS)})
    for option in ({"dataloader_drop_last": True}, {"eval_do_concat_batches": False}):
        args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, **option)
        assert TransferTrainer(model=model, args=args)._length_order(encoded) is None
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    assert (
        TransferTrainer(model=model, args=args)._length_order(encoded).tolist()
        == longest_first([len(ids) for ids in tokenizer(TEXTS)["input_ids"]]).tolist()
    )
