"""K-layer students cut from a teacher keep its embeddings, the chosen layers' weights and its head."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.depth import fewer_layers, spread_layers


@pytest.mark.parametrize(
    ("total", "keep", "expected"),
    [(12, 6, [0, 2, 4, 6, 8, 10]), (6, 3, [0, 2, 4]), (12, 4, [0, 3, 6, 9]), (6, 1, [0]), (2, 1, [0])],
)
def test_layers_are_spread_from_the_bottom_as_distilbert_chose_them(total, keep, expected):
    assert spread_layers(total, keep) == expected


@pytest.mark.parametrize("keep", [0, 6, 7])
def test_a_student_as_deep_as_its_teacher_or_empty_is_refused(keep):
    with pytest.raises(UserInputError, match=rf"layers:{keep} needs 1 <= K < 6: the teacher has 6 layers"):
        spread_layers(6, keep)


def tiny_bert(layers: int = 4) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=99,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    return BertForSequenceClassification(config).eval()


def test_the_student_keeps_the_embeddings_the_chosen_layers_and_the_head():
    teacher = tiny_bert(4)
    student = fewer_layers(teacher, [0, 2])
    assert student.config.num_hidden_layers == 2
    assert len(student.bert.encoder.layer) == 2
    assert len(teacher.bert.encoder.layer) == 4  # the teacher is untouched
    student_state, teacher_state = student.state_dict(), teacher.state_dict()
    for name, value in student_state.items():
        source = name
        if ".encoder.layer." in name:
            index = int(name.split(".encoder.layer.")[1].split(".")[0])
            source = name.replace(f".encoder.layer.{index}.", f".encoder.layer.{[0, 2][index]}.")
        assert torch.equal(value, teacher_state[source]), name
    assert sum(p.numel() for p in student.parameters()) == sum(p.numel() for p in teacher.parameters()) - 2 * sum(
        p.numel() for p in teacher.bert.encoder.layer[1].parameters()
    )


def test_the_student_runs_and_its_parameters_are_its_own():
    teacher = tiny_bert(4)
    student = fewer_layers(teacher, [0, 2])
    ids = torch.tensor([[1, 5, 7, 2]])
    assert student(input_ids=ids).logits.shape == (1, 3)
    with torch.no_grad():
        student.bert.embeddings.word_embeddings.weight.add_(1.0)
    assert not torch.equal(
        student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight
    )


def test_a_distilbert_teacher_loses_layers_under_transformer_layer():
    config = DistilBertConfig(vocab_size=99, dim=16, n_layers=3, n_heads=2, hidden_dim=32, num_labels=2)
    teacher = DistilBertForSequenceClassification(config).eval()
    student = fewer_layers(teacher, [0])
    assert len(student.distilbert.transformer.layer) == 1
    assert student.config.num_hidden_layers == 1 and student.config.n_layers == 1
    assert student(input_ids=torch.tensor([[1, 2, 3]])).logits.shape == (1, 2)
