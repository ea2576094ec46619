"""FLOP counts against a hand computation, for full, freeze, a probe and LoRA (see nlp_transfer/modeling/flops.py)."""

from __future__ import annotations

import pytest
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertForSequenceClassification

from nlp_transfer.modeling.flops import TokenCounts, inference_flops, training_flops

# Hidden 32, intermediate 64: per layer Q, K, V, O are 4 x 32 x 32 = 4,096 weights and the feed-forward
# 2 x 32 x 64 = 4,096: 8,192. The pooler is 32 x 32 = 1,024, the classifier 2 x 32 = 64.
LAYER, POOLER, CLASSIFIER = 8192, 1024, 64
LENGTHS = [3, 5]  # 8 tokens, 2 sequences, 3^2 + 5^2 = 34
TOKENS, SEQUENCES, SQUARED = 8, 2, 34
ATTENTION = 4 * 32 * SQUARED  # forward, per layer


def tiny_model() -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    return BertForSequenceClassification(config)


def freeze_all_but(model: BertForSequenceClassification, *prefixes: str) -> BertForSequenceClassification:
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith(prefixes)
    return model


def test_token_counts() -> None:
    assert TokenCounts.of(LENGTHS) == TokenCounts(SEQUENCES, TOKENS, SQUARED)


def test_full_fine_tuning_is_six_per_weight_and_token() -> None:
    count = training_flops(tiny_model(), TokenCounts.of(LENGTHS))
    assert count.layers == 2 * 6 * LAYER * TOKENS
    assert count.attention == 2 * 3 * ATTENTION
    assert count.head == 6 * (POOLER + CLASSIFIER) * SEQUENCES
    assert count.embeddings == 0  # lookups only
    assert count.total == 825_600


def test_frozen_lower_layers_cost_their_forward_pass_only() -> None:
    model = freeze_all_but(tiny_model(), "bert.encoder.layer.1.", "bert.pooler.", "classifier.")
    count = training_flops(model, TokenCounts.of(LENGTHS))
    assert count.layers == 2 * LAYER * TOKENS + 6 * LAYER * TOKENS
    assert count.attention == ATTENTION + 3 * ATTENTION
    assert count.total == 554_752


def test_a_probe_passes_no_gradient_through_the_frozen_pooler() -> None:
    count = training_flops(freeze_all_but(tiny_model(), "classifier."), TokenCounts.of(LENGTHS))
    assert count.head == (2 * POOLER + 6 * CLASSIFIER) * SEQUENCES
    assert count.total == inference_flops(tiny_model(), TokenCounts.of(LENGTHS)).total + 4 * CLASSIFIER * SEQUENCES


def test_lora_layers_pass_gradients_through_their_frozen_weights() -> None:
    lora = LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"], task_type="SEQ_CLS")
    model = get_peft_model(tiny_model(), lora)
    count = training_flops(model, TokenCounts.of(LENGTHS))
    adapters = 2 * (4 * 32 + 32 * 4)  # A (r x in) and B (out x r) on query and value
    assert count.layers == pytest.approx(2 * (4 * LAYER + 6 * adapters) * TOKENS)
    assert count.attention == 2 * 3 * ATTENTION
    # The pooler is frozen but the LoRA layers below it train; the classifier's trained copy is counted, the
    # frozen original that modules_to_save keeps beside it is not run.
    assert count.head == (4 * POOLER + 6 * CLASSIFIER) * SEQUENCES


def test_inference_is_two_per_weight_and_token() -> None:
    count = inference_flops(tiny_model(), TokenCounts.of(LENGTHS))
    assert count.total == 2 * 2 * LAYER * TOKENS + 2 * ATTENTION + 2 * (POOLER + CLASSIFIER) * SEQUENCES


def test_batch_counts_add_each_batch_at_the_flops_of_the_layers_training_then() -> None:
    import torch

    from nlp_transfer.training.trainer import BatchCounts

    model = freeze_all_but(tiny_model(), "classifier.")
    first = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])  # lengths 3 and 5, padded to 5
    second = torch.tensor([[1, 1, 0, 0]])  # length 2, padded to 4
    counts = BatchCounts()
    counts.add(model, first)
    for parameter in model.bert.encoder.layer[1].parameters():  # gradual unfreezing reaches the top layer
        parameter.requires_grad = True
    counts.add(model, second)
    totals = counts.totals()
    assert (totals["sequences"], totals["real_tokens"], totals["padded_tokens"]) == (3, 10, 14)
    probe = training_flops(freeze_all_but(tiny_model(), "classifier."), TokenCounts.of([3, 5])).total
    top = training_flops(freeze_all_but(tiny_model(), "classifier.", "bert.encoder.layer.1."), TokenCounts.of([2]))
    assert totals["flops"] == pytest.approx(probe + top.total)
