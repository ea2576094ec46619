"""The architecture view on tiny random models of every supported type: parts, counts, depths, peft."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from torch import nn
from transformers import (
    AlbertConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    GPT2Config,
    ModernBertConfig,
    PretrainedConfig,
    RobertaConfig,
    XLMRobertaConfig,
)

from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.layers import (
    SUPPORTED_MODEL_TYPES,
    ArchitectureView,
    architecture_spec,
    architecture_view,
)

# peft reads a deprecated transformers property when it wraps a model: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

H, HEADS, INTER, VOCAB, MAX_POS, LABELS = 32, 2, 37, 100, 64, 3
BERT_SIZES = dict(
    vocab_size=VOCAB,
    hidden_size=H,
    num_attention_heads=HEADS,
    intermediate_size=INTER,
    max_position_embeddings=MAX_POS,
    num_labels=LABELS,
)


TINY_CONFIGS: dict[str, Callable[[], PretrainedConfig]] = {
    "bert": lambda: BertConfig(num_hidden_layers=3, type_vocab_size=2, **BERT_SIZES),
    "distilbert": lambda: DistilBertConfig(
        vocab_size=VOCAB,
        dim=H,
        n_layers=2,
        n_heads=HEADS,
        hidden_dim=INTER,
        max_position_embeddings=MAX_POS,
        num_labels=LABELS,
    ),
    "roberta": lambda: RobertaConfig(num_hidden_layers=2, pad_token_id=1, **BERT_SIZES),
    "xlm-roberta": lambda: XLMRobertaConfig(num_hidden_layers=2, pad_token_id=1, **BERT_SIZES),
    # v3-like: relative attention with a normalised relative-position table
    "deberta-v2": lambda: DebertaV2Config(
        num_hidden_layers=2,
        relative_attention=True,
        position_buckets=16,
        max_relative_positions=-1,
        norm_rel_ebd="layer_norm",
        pos_att_type=["p2c", "c2p"],
        share_att_key=True,
        position_biased_input=False,
        type_vocab_size=0,
        **BERT_SIZES,
    ),
    # v2-xlarge-like: a convolution after the first layer, absolute positions
    "deberta-v2:conv": lambda: DebertaV2Config(num_hidden_layers=2, conv_kernel_size=3, **BERT_SIZES),
    # ELECTRA-small-like: embeddings smaller than the hidden size, projected
    "electra": lambda: ElectraConfig(num_hidden_layers=2, embedding_size=16, **BERT_SIZES),
    "albert": lambda: AlbertConfig(num_hidden_layers=4, embedding_size=16, **BERT_SIZES),
    "albert:groups": lambda: AlbertConfig(num_hidden_layers=4, num_hidden_groups=2, embedding_size=16, **BERT_SIZES),
    "modernbert": lambda: ModernBertConfig(
        num_hidden_layers=3,
        global_attn_every_n_layers=2,
        local_attention=16,
        pad_token_id=0,
        bos_token_id=1,
        cls_token_id=1,
        eos_token_id=2,
        sep_token_id=2,
        **BERT_SIZES,
    ),
}


def tiny_config(kind: str) -> PretrainedConfig:
    """A tiny random config; `kind` is a model_type, or a model_type with a variant after a colon."""
    return TINY_CONFIGS[kind]()


KINDS = list(SUPPORTED_MODEL_TYPES) + ["deberta-v2:conv", "albert:groups"]


def tiny_model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(tiny_config(kind))


def part_parameters(view: ArchitectureView) -> dict[str, list[nn.Parameter]]:
    """Parameters of each part, deduplicated by identity within the part (ALBERT repeats its layer)."""
    parts = {
        "embeddings": [view.embeddings],
        "layers": view.layers,
        "pooler": [view.pooler] if view.pooler is not None else [],
        "head": view.head,
    }
    result = {}
    for part, modules in parts.items():
        seen: dict[int, nn.Parameter] = {}
        for module in modules:
            for parameter in module.parameters():
                seen.setdefault(id(parameter), parameter)
        result[part] = list(seen.values())
    return result


def numel(parameters: list[nn.Parameter]) -> int:
    return sum(p.numel() for p in parameters)


def module_ids(model: nn.Module) -> set[int]:
    return {id(module) for module in model.modules()}


def test_every_supported_type_has_a_spec_and_a_transformers_config() -> None:
    from transformers import CONFIG_MAPPING

    for model_type in SUPPORTED_MODEL_TYPES:
        spec = architecture_spec(model_type)
        assert spec.model_type == model_type
        assert spec.lora_target_modules and spec.head_module_names
        assert spec.shares_layer_weights == (model_type == "albert")
        assert model_type in CONFIG_MAPPING


@pytest.mark.parametrize("kind", KINDS)
def test_view_partitions_the_parameters(kind: str) -> None:
    model = tiny_model(kind)
    config = model.config
    view = architecture_view(model)
    assert view.spec.model_type == config.model_type
    assert len(view.layers) == config.num_hidden_layers

    parts = part_parameters(view)
    by_id: dict[int, str] = {}
    for part, parameters in parts.items():
        for parameter in parameters:
            assert id(parameter) not in by_id, f"a parameter is in both {by_id[id(parameter)]} and {part}"
            by_id[id(parameter)] = part
    model_ids = {id(p) for p in model.parameters()}
    assert set(by_id) == model_ids
    assert sum(numel(parameters) for parameters in parts.values()) == sum(p.numel() for p in model.parameters())
    assert all(parameters for part, parameters in parts.items() if part != "pooler")

    # The head is the spec's modules (attributes of the classification model), then extras; every named
    # module, layer and the pooler is a module registered in the model, so strategies can name it.
    registered = module_ids(model)
    for name, module in zip(view.spec.head_module_names, view.head):
        assert module is getattr(model, name)
    assert all(id(module) in registered for module in view.head + view.layers)
    assert view.pooler is None or id(view.pooler) in registered

    module_names = [name for name, _ in model.named_modules()]
    for target in view.spec.lora_target_modules:
        assert any(name.endswith(f".{target}") for name in module_names), target
        # Every layer holds the target (not only some of them).
        assert all(any(n.endswith(target) for n, _ in layer.named_modules()) for layer in view.layers)


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_depths(kind: str) -> None:
    model = tiny_model(kind)
    view = architecture_view(model)
    depths = view.parameter_depths(model)
    num_layers = len(view.layers)
    names = {id(p): name for name, p in model.named_parameters()}
    assert set(depths) == set(names.values())

    assert {depths[names[id(p)]] for p in view.embeddings.parameters()} == {0}
    if not view.spec.shares_layer_weights:
        for index, layer in enumerate(view.layers):
            assert {depths[names[id(p)]] for p in layer.parameters()} == {index + 1}
    top = {depths[names[id(p)]] for module in view.head for p in module.parameters()}
    if view.pooler is not None:
        top |= {depths[names[id(p)]] for p in view.pooler.parameters()}
    assert top == {num_layers + 1}
    assert set(depths.values()) == set(range(num_layers + 2)) or view.spec.shares_layer_weights


def test_bert_part_sizes_match_the_formulas() -> None:
    model = tiny_model("bert")
    config = model.config
    h, i, n = config.hidden_size, config.intermediate_size, config.num_labels
    parts = part_parameters(architecture_view(model))

    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    attention = 4 * (h * h + h) + 2 * h  # query, key, value, output dense; LayerNorm
    feed_forward = (h * i + i) + (i * h + h) + 2 * h  # intermediate, output dense; LayerNorm
    assert numel(parts["embeddings"]) == embeddings
    assert numel(parts["layers"]) == config.num_hidden_layers * (attention + feed_forward)
    assert numel(parts["pooler"]) == h * h + h
    assert numel(parts["head"]) == h * n + n
    for layer in architecture_view(model).layers:
        assert sum(p.numel() for p in layer.parameters()) == attention + feed_forward


def test_heads_and_poolers_per_architecture() -> None:
    """The decisions documented in layers.py, checked on the real classes."""
    expected_pooler = {
        "bert": lambda m: m.bert.pooler,
        "albert": lambda m: m.albert.pooler,
        "modernbert": lambda m: m.head,
    }
    for model_type in SUPPORTED_MODEL_TYPES:
        model = tiny_model(model_type)
        view = architecture_view(model)
        pooler = expected_pooler.get(model_type)
        assert view.pooler is (pooler(model) if pooler else None), model_type
    distilbert = architecture_view(tiny_model("distilbert"))
    assert distilbert.spec.head_module_names == ("pre_classifier", "classifier")
    deberta = tiny_model("deberta-v2")
    assert architecture_view(deberta).head == [deberta.pooler, deberta.classifier]
    modernbert = tiny_model("modernbert")
    assert architecture_view(modernbert).head == [modernbert.classifier, modernbert.model.final_norm]


def test_input_side_modules_go_with_the_embeddings() -> None:
    cases = {
        "electra": lambda m: [m.electra.embeddings_project],
        "albert": lambda m: [m.albert.encoder.embedding_hidden_mapping_in],
        "deberta-v2": lambda m: [m.deberta.encoder.rel_embeddings, m.deberta.encoder.LayerNorm],
        "deberta-v2:conv": lambda m: [m.deberta.encoder.conv],
    }
    for kind, extras in cases.items():
        model = tiny_model(kind)
        view = architecture_view(model)
        depths = view.parameter_depths(model)
        names = {id(p): name for name, p in model.named_parameters()}
        for module in extras(model):
            assert any(sub is module for sub in view.embeddings.modules()), kind
            assert {depths[names[id(p)]] for p in module.parameters()} == {0}, kind
    bert = tiny_model("bert")
    assert architecture_view(bert).embeddings is bert.bert.embeddings


def test_albert_layers_are_the_shared_group_at_every_depth() -> None:
    model = tiny_model("albert")
    view = architecture_view(model)
    assert view.spec.shares_layer_weights
    shared = model.albert.encoder.albert_layer_groups[0]
    assert len(view.layers) == 4 and all(layer is shared for layer in view.layers)
    depths = view.parameter_depths(model)
    layer_depths = {depth for name, depth in depths.items() if ".albert_layer_groups." in name}
    assert layer_depths == {4}  # the top: the shared weights serve the top layer

    grouped = tiny_model("albert:groups")
    view = architecture_view(grouped)
    groups = grouped.albert.encoder.albert_layer_groups
    assert [id(layer) for layer in view.layers] == [id(groups[0])] * 2 + [id(groups[1])] * 2
    depths = view.parameter_depths(grouped)
    assert {d for n, d in depths.items() if ".albert_layer_groups.0." in n} == {2}
    assert {d for n, d in depths.items() if ".albert_layer_groups.1." in n} == {4}


def test_unsupported_types_raise_user_input_error() -> None:
    gpt2 = AutoModelForSequenceClassification.from_config(
        GPT2Config(n_embd=H, n_layer=2, n_head=HEADS, vocab_size=VOCAB, n_positions=MAX_POS, num_labels=LABELS)
    )
    with pytest.raises(UserInputError) as raised:
        architecture_view(gpt2)
    message = str(raised.value)
    assert "'gpt2'" in message
    assert all(model_type in message for model_type in SUPPORTED_MODEL_TYPES)
    with pytest.raises(UserInputError, match="made-up-bert.*bert, distilbert, roberta"):
        architecture_spec("made-up-bert")


def test_a_model_without_the_classification_head_is_refused() -> None:
    from transformers import AutoModel

    with pytest.raises(TypeError, match="ForSequenceClassification"):
        architecture_view(AutoModel.from_config(tiny_config("bert")))


def test_a_parameter_outside_every_part_is_reported_by_name() -> None:
    model = tiny_model("bert")
    view = architecture_view(model)
    model.extra_adapter = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"2 parameter\(s\).*extra_adapter\.weight, extra_adapter\.bias"):
        view.parameter_depths(model)
    with pytest.raises(ValueError, match="extra_adapter.weight"):
        architecture_view(model)


@pytest.mark.parametrize("kind", SUPPORTED_MODEL_TYPES)
def test_lora_wrapped_models_keep_their_view(kind: str) -> None:
    model = tiny_model(kind)
    spec = architecture_spec(model.config.model_type)
    plain_view = architecture_view(model)
    peft_model = get_peft_model(
        model,
        LoraConfig(
            task_type=TaskType.SEQ_CLS,
            target_modules=list(spec.lora_target_modules),
            modules_to_save=list(spec.head_module_names),
            r=2,
        ),
    )
    view = architecture_view(peft_model)
    assert view.spec == spec
    assert [id(layer) for layer in view.layers] == [id(layer) for layer in plain_view.layers]

    depths = view.parameter_depths(peft_model)
    named = dict(peft_model.named_parameters())
    assert set(depths) == set(named)
    num_layers = len(view.layers)
    lora = [name for name in named if ".lora_A." in name or ".lora_B." in name]
    assert lora and all(name.startswith("base_model.model.") for name in lora)
    assert all(1 <= depths[name] <= num_layers for name in lora)
    # The spec's head trains and is saved: its trainable copies sit at the top depth.
    copies = [name for name in named if ".modules_to_save." in name]
    for head_name in spec.head_module_names:
        assert any(f".{head_name}.modules_to_save." in name for name in copies), head_name
    assert all(depths[name] == num_layers + 1 for name in copies)
    trainable = {name for name, p in named.items() if p.requires_grad}
    assert trainable == set(lora) | set(copies)


def test_lora_on_bert_depth_of_each_lora_matrix_is_its_layer() -> None:
    model = tiny_model("bert")
    peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, target_modules=["query", "value"], r=2))
    view = architecture_view(peft_model)
    depths = view.parameter_depths(peft_model)
    for name, depth in depths.items():
        if ".lora_" in name:
            index = int(name.split(".encoder.layer.")[1].split(".")[0])
            assert depth == index + 1, name
        elif "classifier" in name:
            assert depth == len(view.layers) + 1, name
