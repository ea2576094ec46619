"""The static classifier reads a text as Model2Vec does (mean of known tokens, unit length), then its head."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from nlp_transfer.modeling.static_classifier import StaticClassifierConfig, StaticForSequenceClassification


def tiny_static(head_hidden_size: int = 0, normalize: bool = True) -> StaticForSequenceClassification:
    torch.manual_seed(0)
    config = StaticClassifierConfig(
        vocab_size=6,
        hidden_size=3,
        head_hidden_size=head_hidden_size,
        normalize=normalize,
        unk_token_id=1,
        pad_token_id=0,
        num_labels=2,
        id2label={0: "no", 1: "yes"},
        label2id={"no": 0, "yes": 1},
    )
    model = StaticForSequenceClassification(config).eval()
    model.set_vectors(torch.arange(18, dtype=torch.float32).view(6, 3))
    return model


def test_a_text_is_the_mean_of_its_known_tokens_vectors_at_unit_length_then_the_head():
    model = tiny_static()
    ids = torch.tensor([[2, 3, 1, 0], [5, 0, 0, 0]])  # token 1 is unknown, 0 is padding
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    vectors = torch.arange(18, dtype=torch.float32).view(6, 3)
    mean = torch.stack([(vectors[2] + vectors[3]) / 2, vectors[5]])
    expected = nn.functional.normalize(mean, dim=-1)
    assert torch.allclose(model.text_vectors(ids, mask), expected)
    linear = model.head[0]
    assert torch.allclose(model(input_ids=ids, attention_mask=mask).logits, expected @ linear.weight.T + linear.bias)


def test_a_text_of_unknown_tokens_only_reads_as_the_zero_vector():
    model = tiny_static(normalize=False)
    vector = model.text_vectors(torch.tensor([[1, 1]]), torch.tensor([[1, 1]]))
    assert torch.equal(vector, torch.zeros(1, 3))


def test_it_has_no_encoder_only_a_table_and_a_small_head():
    model = tiny_static(head_hidden_size=4)
    kinds = {type(module) for module in model.modules()} - {StaticForSequenceClassification, nn.Sequential}
    assert kinds == {nn.Embedding, nn.Linear, nn.ReLU}
    assert sum(p.numel() for p in model.parameters()) == 6 * 3 + (3 * 4 + 4) + (4 * 2 + 2)


def test_it_saves_as_safetensors_and_loads_through_the_auto_classes_with_equal_outputs(tmp_path):
    model = tiny_static(head_hidden_size=4)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "nlp-transfer-static"
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    ids, mask = torch.tensor([[2, 4, 5]]), torch.tensor([[1, 1, 1]])
    assert torch.equal(
        loaded(input_ids=ids, attention_mask=mask).logits, model(input_ids=ids, attention_mask=mask).logits
    )
    assert loaded.config.id2label == {0: "no", 1: "yes"}


def test_labels_give_the_loss_of_the_problem_type():
    model = tiny_static()
    ids, mask = torch.tensor([[2, 3]]), torch.tensor([[1, 1]])
    output = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([1]))
    assert torch.allclose(output.loss, nn.functional.cross_entropy(output.logits, torch.tensor([1])))
