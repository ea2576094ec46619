"""The transfer strategies on tiny random models: what trains, optimizer groups, gradual unfreezing, whole runs.

Expected parameter counts are worked out here from each architecture's modules, named explicitly per model
type (not through `nlp_transfer.modeling.layers`), so a wrong architecture view or strategy shows up as a count
mismatch.
The end-to-end runs train the session's 2-layer BERT from conftest for one or two epochs on a few dozen rows.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import sentiment_rows, write_csv
from safetensors.torch import load_file
from test_layers import HEADS, LABELS, MAX_POS, VOCAB, H, tiny_config
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GPT2Config,
    PretrainedConfig,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from nlp_transfer import RunConfig, UserInputError, fine_tune, load_classifier
from nlp_transfer.config.strategy import StrategyArguments
from nlp_transfer.inference.predict import Classifier
from nlp_transfer.modeling.checkpoints import BUNDLED_HUB_ID, Checkpoint, resolve_checkpoint
from nlp_transfer.modeling.checkpoints import load_config as load_checkpoint_config
from nlp_transfer.modeling.layers import SUPPORTED_MODEL_TYPES
from nlp_transfer.modeling.strategies import (
    STRATEGIES,
    PreparedModel,
    StrategyContext,
    count_parameters,
    get_strategy,
)
from nlp_transfer.modeling.strategies.full import FullFineTuning
from nlp_transfer.modeling.strategies.lora import name_adapter_base
from nlp_transfer.modeling.strategies.scratch import FromScratch
from nlp_transfer.training import plan as plan_module
from nlp_transfer.training import verification as verification_module
from nlp_transfer.training import write as write_module
from nlp_transfer.training.callbacks import GradualUnfreezeCallback
from nlp_transfer.training.trainer import TransferTrainer
from nlp_transfer.training.verification import ReloadCheckError

pytestmark = [
    # peft reads a deprecated transformers property when it wraps a model: not ours to fix.
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning"),
    # peft renames the base of a from-config model (see test_prepare_keeps_the_context_base_model_id).
    pytest.mark.filterwarnings("ignore:.*base_model_name_or_path.*was renamed:UserWarning"),
]

BASE_LR = 1e-3
WEIGHT_DECAY = 0.01
LORA_R = StrategyArguments().lora_r
FAST = {"disable_tqdm": True, "learning_rate": 1e-3, "num_train_epochs": 1}
KINDS = list(SUPPORTED_MODEL_TYPES) + ["albert:groups"]


# ------------------------------------------------------------------------------------------------- helpers


def three_layer_config(kind: str) -> PretrainedConfig:
    """test_layers' tiny config (num_labels=3) with 3 encoder layers; ALBERT keeps its 4 layers in 1 or 2 groups."""
    config = tiny_config(kind)
    if not kind.startswith("albert"):
        config.num_hidden_layers = 3
    return config


def tiny_model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(three_layer_config(kind))


LORA_TARGETS = {
    "bert": ("query", "value"),
    "distilbert": ("q_lin", "v_lin"),
    "roberta": ("query", "value"),
    "xlm-roberta": ("query", "value"),
    "deberta-v2": ("query_proj", "value_proj"),
    "electra": ("query", "value"),
    "albert": ("query", "value"),
    "modernbert": ("Wqkv",),
}


def model_parts(model: nn.Module) -> dict[str, Any]:
    """Embeddings, layers (bottom to top; ALBERT: its layer groups), pooler and head, named per model type."""
    model_type = model.config.model_type
    if model_type in ("bert", "roberta", "xlm-roberta", "electra"):
        base = getattr(model, {"bert": "bert", "electra": "electra"}.get(model_type, "roberta"))
        embeddings = [base.embeddings] + ([base.embeddings_project] if model_type == "electra" else [])
        pooler = base.pooler if model_type == "bert" else None
        return {
            "embeddings": embeddings,
            "layers": list(base.encoder.layer),
            "pooler": pooler,
            "head": [model.classifier],
        }
    if model_type == "distilbert":
        return {
            "embeddings": [model.distilbert.embeddings],
            "layers": list(model.distilbert.transformer.layer),
            "pooler": None,
            "head": [model.pre_classifier, model.classifier],
        }
    if model_type == "deberta-v2":
        encoder = model.deberta.encoder
        return {
            "embeddings": [model.deberta.embeddings, encoder.rel_embeddings, encoder.LayerNorm],
            "layers": list(encoder.layer),
            "pooler": None,
            "head": [model.pooler, model.classifier],
        }
    if model_type == "albert":
        encoder = model.albert.encoder
        return {
            "embeddings": [model.albert.embeddings, encoder.embedding_hidden_mapping_in],
            "layers": list(encoder.albert_layer_groups),
            "pooler": model.albert.pooler,
            "head": [model.classifier],
        }
    if model_type == "modernbert":
        return {
            "embeddings": [model.model.embeddings],
            "layers": list(model.model.layers),
            "pooler": model.head,
            "head": [model.classifier, model.model.final_norm],
        }
    raise AssertionError(model_type)


def parameters_of(modules: list[nn.Module | None]) -> dict[int, nn.Parameter]:
    found: dict[int, nn.Parameter] = {}
    for module in modules:
        if module is not None:
            for parameter in module.parameters():
                found.setdefault(id(parameter), parameter)
    return found


def numel(modules: list[nn.Module | None]) -> int:
    return sum(p.numel() for p in parameters_of(modules).values())


def lora_size(modules: list[nn.Module], targets: tuple[str, ...], r: int = LORA_R) -> int:
    """r * (in + out) for every target Linear inside `modules` (each counted once)."""
    seen: set[int] = set()
    total = 0
    for module in modules:
        for name, sub in module.named_modules():
            if name.split(".")[-1] in targets and isinstance(sub, nn.Linear) and id(sub) not in seen:
                seen.add(id(sub))
                total += r * (sub.in_features + sub.out_features)
    return total


def context(strategy: str, **options: Any) -> StrategyContext:
    return StrategyContext(
        args=StrategyArguments(strategy=strategy, **options),
        learning_rate=BASE_LR,
        weight_decay=WEIGHT_DECAY,
        base_model_id="local/tiny",
    )


def prepare(model: nn.Module, strategy: str, **options: Any) -> PreparedModel:
    return get_strategy(strategy).prepare(model, context(strategy, **options))


def trainable_ids(model: nn.Module) -> set[int]:
    return {id(p) for p in model.parameters() if p.requires_grad}


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def hidden_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def run_options(model: Path, files: dict[str, Path], output_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "model": str(model),
        "train_file": str(files["train"]),
        "validation_file": str(files["validation"]),
        "output_dir": str(output_dir),
        **FAST,
        **extra,
    }


def run(model: Path, files: dict[str, Path], output_dir: Path, **extra: Any):
    return fine_tune(RunConfig.from_dict(run_options(model, files, output_dir, **extra)))


# ------------------------------------------------------------------- 1. what each strategy trains, counted


CASES = {
    "full": ("full", {}),
    "full-frozen-words": ("full", {"freeze_word_embeddings": True}),
    "freeze-k1": ("freeze", {"train_top_layers": 1}),
    "probe-k0": ("freeze", {"train_top_layers": 0}),
    "freeze-k1-embeddings": ("freeze", {"train_top_layers": 1, "train_embeddings": True}),
    "lora": ("lora", {}),
    "hybrid-k1": ("hybrid", {"train_top_layers": 1}),
}


def expected_trainable(case: str, model: nn.Module) -> tuple[int, int, set[int] | None]:
    """(trainable, total, ids of the trainable parameters or None for peft models) worked out from the modules."""
    parts = model_parts(model)
    targets = LORA_TARGETS[model.config.model_type]
    total = numel([model])
    head, top, pooler = numel(parts["head"]), numel(parts["layers"][-1:]), numel([parts["pooler"]])
    if case == "full":
        return total, total, set(parameters_of([model]))
    if case == "full-frozen-words":
        words = model.get_input_embeddings().weight
        return total - words.numel(), total, set(parameters_of([model])) - {id(words)}
    if case == "probe-k0":
        return head, total, set(parameters_of(parts["head"]))
    if case == "freeze-k1":
        modules = parts["head"] + parts["layers"][-1:] + [parts["pooler"]]
        return head + top + pooler, total, set(parameters_of(modules))
    if case == "freeze-k1-embeddings":
        modules = parts["head"] + parts["layers"][-1:] + [parts["pooler"]] + parts["embeddings"]
        return head + top + pooler + numel(parts["embeddings"]), total, set(parameters_of(modules))
    if case == "lora":
        # LoRA matrices on every target; peft trains a copy of each head module (the original stays frozen).
        lora = lora_size([model], targets)
        return lora + head, total + lora + head, None
    if case == "hybrid-k1":
        # LoRA on the layers below the top one; copies of the top layer, the pooler and the head train in full.
        lora = lora_size(parts["layers"][:-1], targets)
        trained_copies = top + pooler + head
        return lora + trained_copies, total + lora + trained_copies, None
    raise AssertionError(case)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_trainable_parameter_counts(kind: str, case: str) -> None:
    strategy, options = CASES[case]
    model = tiny_model(kind)
    assert model.config.num_labels == LABELS
    if case == "hybrid-k1" and kind == "albert":
        # One layer group serves every depth: training the top layer in full leaves nothing below for LoRA.
        with pytest.raises(UserInputError, match=r"hybrid with --train-top-layers 1 leaves no lower layer.*albert"):
            prepare(model, strategy, **options)
        return
    trainable, total, ids = expected_trainable(case, model)
    prepared = prepare(model, strategy, **options)
    assert count_parameters(prepared.model) == (trainable, total)
    if ids is not None:
        assert prepared.model is model
        assert trainable_ids(model) == ids
    assert prepared.is_adapter == (strategy in ("lora", "hybrid"))


def test_freeze_settings_say_what_trains() -> None:
    probe = prepare(tiny_model("bert"), "freeze", train_top_layers=0)
    assert probe.param_groups is None and probe.unfreeze_units is None
    assert probe.settings == {
        "train_top_layers": 0,
        "frozen_layers": 3,
        "train_embeddings": False,
        "linear_probe": True,
    }
    with_embeddings = prepare(tiny_model("bert"), "freeze", train_top_layers=1, train_embeddings=True)
    assert with_embeddings.settings == {
        "train_top_layers": 1,
        "frozen_layers": 2,
        "train_embeddings": True,
        "linear_probe": False,
    }


@pytest.mark.parametrize("strategy", ["freeze", "hybrid"])
def test_top_layers_beyond_the_model_are_refused(strategy: str) -> None:
    with pytest.raises(UserInputError, match=r"--train-top-layers 4 is outside 0\.\.3: this bert model has 3"):
        prepare(tiny_model("bert"), strategy, train_top_layers=4)


def test_hybrid_on_albert_with_two_groups_adapts_the_lower_group() -> None:
    model = tiny_model("albert:groups")
    lower, upper = model.albert.encoder.albert_layer_groups
    expected = lora_size([lower], ("query", "value")) + numel([upper, model.albert.pooler, model.classifier])
    prepared = prepare(model, "hybrid", train_top_layers=1)
    named = dict(prepared.model.named_parameters())
    lora = {name for name in named if ".lora_" in name}
    assert lora and all(".albert_layer_groups.0." in name for name in lora)
    assert prepared.settings["lora_layers"] == 1
    # Only the shared group of the top depths, the pooler and the head are trained in full (peft copies).
    copies = {name.split(".modules_to_save.")[0] for name in named if ".modules_to_save." in name}
    assert copies == {
        "base_model.model." + m for m in ("classifier", "albert.encoder.albert_layer_groups.1", "albert.pooler")
    }
    assert count_parameters(prepared.model)[0] == expected


def test_scratch_loads_random_weights_not_the_checkpoint(tiny_checkpoint: Path) -> None:
    checkpoint = resolve_checkpoint(str(tiny_checkpoint))
    saved = load_file(str(tiny_checkpoint / "model.safetensors"))
    matrices = {key: tensor for key, tensor in saved.items() if tensor.ndim >= 2}
    assert matrices

    torch.manual_seed(1234)
    scratch = FromScratch().load_model(checkpoint, load_checkpoint_config(checkpoint, num_labels=3))
    pretrained = FullFineTuning().load_model(checkpoint, load_checkpoint_config(checkpoint, num_labels=3))
    scratch_weights = {k.removeprefix("bert."): v for k, v in scratch.state_dict().items()}
    pretrained_weights = {k.removeprefix("bert."): v for k, v in pretrained.state_dict().items()}
    for key, tensor in matrices.items():
        assert scratch_weights[key].shape == tensor.shape, key
        assert not torch.equal(scratch_weights[key], tensor), key
        assert torch.equal(pretrained_weights[key], tensor), key
    assert scratch.config.num_labels == 3
    prepared = FromScratch().prepare(scratch, context("scratch"))
    trainable, total = count_parameters(prepared.model)
    assert trainable == total == sum(p.numel() for p in scratch.parameters())
    assert prepared.param_groups is None


# ------------------------------------------------------------------------- 2. one optimizer step


def trainer_optimizer(prepared: PreparedModel, tmp_path: Path) -> torch.optim.Optimizer:
    """The optimizer training.py's TransferTrainer builds: Trainer's AdamW, or AdamW over the strategy's groups."""
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        learning_rate=BASE_LR,
        weight_decay=WEIGHT_DECAY,
        report_to="none",
        use_cpu=True,
    )
    trainer = TransferTrainer(model=prepared.model, args=args, param_groups=prepared.param_groups)
    return trainer.create_optimizer()


def tiny_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(5, VOCAB, (4, 10), generator=generator),
        "attention_mask": torch.ones(4, 10, dtype=torch.long),
        "labels": torch.tensor([0, 1, 2, 1]),
    }


STEP_CASES = {
    "full-frozen-words": ("full", {"freeze_word_embeddings": True}),
    "freeze": ("freeze", {"train_top_layers": 1}),
    "lora": ("lora", {}),
    "hybrid": ("hybrid", {"train_top_layers": 1}),
}


@pytest.mark.parametrize("case", list(STEP_CASES))
@pytest.mark.parametrize("kind", ["bert", "distilbert", "deberta-v2", "modernbert", "albert:groups"])
def test_one_step_moves_exactly_the_trainable_weights(kind: str, case: str, tmp_path: Path) -> None:
    strategy, options = STEP_CASES[case]
    prepared = prepare(tiny_model(kind), strategy, **options)
    model = prepared.model
    optimizer = trainer_optimizer(prepared, tmp_path)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    frozen = set(before) - trainable
    assert trainable and frozen
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimized == trainable_ids(model)

    model.train()
    loss = model(**tiny_batch()).loss
    assert math.isfinite(loss.item())
    loss.backward()
    optimizer.step()

    after = dict(model.named_parameters())
    unchanged = {name for name in before if torch.equal(after[name], before[name])}
    assert unchanged == frozen
    if strategy == "freeze":
        embeddings = {name for name in before if "embeddings" in name}
        assert embeddings and embeddings <= frozen
    elif strategy == "full":
        words = model.get_input_embeddings().weight
        assert frozen == {name for name, p in model.named_parameters() if p is words}
    else:
        # Every base weight under LoRA, and the originals of the modules peft trains a copy of, stay as they were.
        assert {name for name in before if ".base_layer." in name or ".original_module." in name} <= frozen
        assert {name for name in before if ".lora_" in name or ".modules_to_save." in name} == trainable


# ------------------------------------------------------------------------- 3. layer-wise learning rates


def bert_depth(name: str) -> int:
    """Depth of a BERT parameter by its name: 0 embeddings, i+1 encoder layer i, 4 pooler and head (3 layers)."""
    layer = re.search(r"\.encoder\.layer\.(\d+)\.", name)
    if layer:
        return int(layer.group(1)) + 1
    if "bert.embeddings." in name:
        return 0
    if "bert.pooler." in name or "classifier." in name:
        return 4
    raise AssertionError(name)


def check_groups(model: nn.Module, groups: list[dict[str, Any]], expected_lr: dict[int, float]) -> None:
    names = {id(p): name for name, p in model.named_parameters()}
    placed = Counter(id(p) for group in groups for p in group["params"])
    assert set(placed) == trainable_ids(model)
    assert set(placed.values()) == {1}, "a parameter is in two groups"
    for group in groups:
        assert group["params"]
        for parameter in group["params"]:
            name = names[id(parameter)]
            assert group["lr"] == expected_lr[bert_depth(name)], (group["name"], name)
            no_decay = name.endswith(".bias") or "LayerNorm" in name
            assert group["weight_decay"] == (0.0 if no_decay else WEIGHT_DECAY), (group["name"], name)
            assert group["name"].endswith("/no_decay" if no_decay else "/decay")


def test_full_with_layer_decay_and_head_multiplier(tmp_path: Path) -> None:
    model = tiny_model("bert")
    prepared = prepare(model, "full", layer_lr_decay=0.5, head_lr_multiplier=10.0)
    assert prepared.settings["layer_lr_decay"] == 0.5 and prepared.settings["head_lr_multiplier"] == 10.0
    expected = {depth: 1e-3 * 0.5 ** (3 - depth) for depth in range(4)} | {4: 1e-3 * 10.0}
    assert expected[4] == pytest.approx(1e-2, rel=1e-15) and expected[0] == 1.25e-4
    check_groups(model, prepared.param_groups, expected)
    names = [group["name"] for group in prepared.param_groups]
    assert names == [
        f"{part}/{kind}"
        for part in ("embeddings", "layer_0", "layer_1", "layer_2", "head")
        for kind in ("decay", "no_decay")
    ]

    # TransferTrainer hands the groups to AdamW as they are: Trainer's default lr does not override them.
    optimizer = trainer_optimizer(prepared, tmp_path)
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
        (g["lr"], g["weight_decay"]) for g in prepared.param_groups
    ]


def test_full_without_options_uses_trainers_own_groups() -> None:
    prepared = prepare(tiny_model("bert"), "full")
    assert prepared.param_groups is None and prepared.unfreeze_units is None
    assert prepared.settings == {"trains": "all weights", "layer_lr_decay": 1.0, "head_lr_multiplier": 1.0}


def test_hybrid_default_decay_is_0_9() -> None:
    prepared = prepare(tiny_model("bert"), "hybrid", train_top_layers=1)
    assert prepared.settings["layer_lr_decay"] == 0.9
    # The embeddings are frozen, so they have no group; the LoRA matrices of layers 0 and 1 decay below the top.
    expected = {1: 1e-3 * 0.9**2, 2: 1e-3 * 0.9, 3: 1e-3, 4: 1e-3 * 1.0}
    check_groups(prepared.model, prepared.param_groups, expected)
    assert {group["name"].split("/")[0] for group in prepared.param_groups} == {"layer_0", "layer_1", "layer_2", "head"}


# --------------------------------------------------------------------------- 4. gradual unfreezing


def trainable_units(units: list[list[nn.Parameter]]) -> list[bool]:
    states = [{p.requires_grad for p in unit} for unit in units]
    assert all(len(state) == 1 for state in states), "a unit is partly frozen"
    return [state.pop() for state in states]


def callback_call(callback: GradualUnfreezeCallback, event: str, tmp_path: Path, step: int, epoch: float | None):
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), report_to="none")
    state = TrainerState(global_step=step, epoch=epoch)
    getattr(callback, event)(args, state, TrainerControl())


def test_gradual_unfreezing_by_epoch(tmp_path: Path) -> None:
    model = tiny_model("bert")
    prepared = prepare(model, "full", gradual_unfreeze=True)
    units = prepared.unfreeze_units
    names = {id(p): name for name, p in model.named_parameters()}
    unit_names = [{names[id(p)] for p in unit} for unit in units]
    # Top down: head and pooler, layer 2, layer 1, layer 0, embeddings.
    assert [{bert_depth(name) for name in unit} for unit in unit_names] == [{4}, {3}, {2}, {1}, {0}]
    assert unit_names[0] == {n for n in names.values() if n.startswith(("classifier.", "bert.pooler."))}
    assert sum(len(unit) for unit in units) == len(names)
    # The optimizer groups hold every parameter from the start, frozen or not.
    assert sum(len(group["params"]) for group in prepared.param_groups) == len(names)
    assert prepared.settings["gradual_unfreeze"] is True

    callback = GradualUnfreezeCallback(units)
    callback_call(callback, "on_train_begin", tmp_path, step=0, epoch=0.0)
    assert trainable_units(units) == [True, False, False, False, False]
    assert count_parameters(model)[0] == sum(p.numel() for p in units[0])
    callback_call(callback, "on_epoch_begin", tmp_path, step=0, epoch=0.0)
    assert trainable_units(units) == [True, False, False, False, False]
    callback_call(callback, "on_epoch_begin", tmp_path, step=3, epoch=1.0)
    assert trainable_units(units) == [True, True, False, False, False]
    callback_call(callback, "on_step_begin", tmp_path, step=4, epoch=1.33)  # steps do not count in epoch mode
    assert trainable_units(units) == [True, True, False, False, False]
    callback_call(callback, "on_epoch_begin", tmp_path, step=30, epoch=10.0)  # never beyond the last unit
    assert trainable_units(units) == [True] * 5
    assert callback.history == [(0, 1), (3, 2), (30, 5)]


def test_gradual_unfreezing_resumed_mid_epoch_takes_the_stage_of_that_epoch(tmp_path: Path) -> None:
    units = prepare(tiny_model("bert"), "full", gradual_unfreeze=True).unfreeze_units
    callback = GradualUnfreezeCallback(units)
    callback_call(callback, "on_train_begin", tmp_path, step=17, epoch=2.6)  # --resume at step 17 of epoch 2
    callback_call(callback, "on_epoch_begin", tmp_path, step=17, epoch=2.6)
    assert trainable_units(units) == [True, True, True, False, False]  # epoch 2's stage, not round(2.6) = 3
    callback_call(callback, "on_epoch_begin", tmp_path, step=18, epoch=2.9999999)  # float sum at epoch 3's start
    assert trainable_units(units) == [True, True, True, True, False]


def test_gradual_unfreezing_every_n_steps(tmp_path: Path) -> None:
    prepared = prepare(tiny_model("bert"), "full", gradual_unfreeze=True, unfreeze_every_steps=5)
    assert prepared.settings["unfreeze_every_steps"] == 5
    units = prepared.unfreeze_units
    callback = GradualUnfreezeCallback(units, every_steps=5)
    callback_call(callback, "on_train_begin", tmp_path, step=0, epoch=0.0)
    counts = []
    for step in (0, 4, 5, 10):
        callback_call(callback, "on_step_begin", tmp_path, step=step, epoch=None)
        counts.append(sum(trainable_units(units)))
    assert counts == [1, 1, 2, 3]
    callback_call(callback, "on_epoch_begin", tmp_path, step=10, epoch=1.0)  # epochs do not count in step mode
    assert sum(trainable_units(units)) == 3
    assert callback.history == [(0, 1), (5, 2), (10, 3)]


def test_still_frozen_units_do_not_move_although_the_optimizer_holds_them(tmp_path: Path) -> None:
    prepared = prepare(tiny_model("bert"), "full", gradual_unfreeze=True, layer_lr_decay=0.9)
    model, units = prepared.model, prepared.unfreeze_units
    optimizer = trainer_optimizer(prepared, tmp_path)
    assert {id(p) for group in optimizer.param_groups for p in group["params"]} == {id(p) for p in model.parameters()}
    callback = GradualUnfreezeCallback(units)
    callback_call(callback, "on_train_begin", tmp_path, step=0, epoch=0.0)
    before = [[p.detach().clone() for p in unit] for unit in units]
    model.train()
    model(**tiny_batch()).loss.backward()
    optimizer.step()
    moved = [[not torch.equal(p, old) for p, old in zip(unit, olds)] for unit, olds in zip(units, before)]
    assert all(moved[0])
    assert not any(any(unit) for unit in moved[1:]), "weight decay or momentum touched a frozen unit"


# ------------------------------------------------------------------------- 5. LoRA end to end


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """One LoRA run with --merge-lora; the model verify_reload saw in memory is kept for comparison."""
    root = tmp_path_factory.mktemp("lora-run")
    files = {
        "train": write_csv(root / "data" / "train.csv", sentiment_rows(12)),
        "validation": write_csv(root / "data" / "validation.csv", sentiment_rows(4)),
    }
    out = root / "out"
    seen: dict[str, Any] = {}
    original = write_module.verify_reload

    def spy(model, folder, data, tokenizer, max_length):
        seen.update(model=model, tokenizer=tokenizer, max_length=max_length, task=data.schema.task)
        return original(model, folder, data, tokenizer, max_length)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(write_module, "verify_reload", spy)
        result = run(tiny_checkpoint, files, out, strategy="lora", merge_lora=True)
    texts = [row["text"] for row in sentiment_rows(4)] + ["great product", "awful and slow"]
    return {"root": root, "out": out, "result": result, "in_memory": seen, "texts": texts}


def test_lora_run_writes_adapter_config_and_merged_model(lora_run: dict[str, Any]) -> None:
    out: Path = lora_run["out"]
    assert lora_run["result"].output_dir == out
    for name in ("adapter_config.json", "adapter_model.safetensors", "config.json", "metrics.json"):
        assert (out / name).is_file(), name
    assert not (out / "model.safetensors").exists()
    assert read_json(out / "config.json")["id2label"] == {"0": "negative", "1": "positive"}
    merged = out / "merged"
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
    assert not [p.name for p in merged.iterdir() if p.name.startswith("adapter_")]
    assert read_json(merged / "config.json")["id2label"] == {"0": "negative", "1": "positive"}
    assert hidden_entries(lora_run["root"]) == []


def test_lora_run_metrics(lora_run: dict[str, Any]) -> None:
    out: Path = lora_run["out"]
    metrics = read_json(out / "metrics.json")
    check = metrics["reload_check"]
    assert check["passed"] is True
    assert set(check["folders"]) == {".", "merged"}
    assert all(entry["max_abs_logit_difference"] <= 1e-4 for entry in check["folders"].values())
    # Trainable: r*(in+out) per query/value Linear of the 2 layers, plus the classifier's trained copy.
    plain = AutoModelForSequenceClassification.from_pretrained(out / "merged")
    lora = lora_size([plain], ("query", "value"))
    head = numel([plain.classifier])
    assert lora == 2 * 2 * LORA_R * (32 + 32)
    assert metrics["trainable_parameters"] == lora + head
    assert metrics["total_parameters"] == numel([plain]) + lora + head
    settings = metrics["strategy_settings"]
    assert settings["target_modules"] == ["query", "value"]
    assert "classifier" in settings["modules_to_save"]  # exact list: test_settings_record_the_modules_to_save
    assert settings["lora_r"] == LORA_R


def test_lora_predictions_agree_across_loaders(lora_run: dict[str, Any]) -> None:
    out: Path = lora_run["out"]
    texts = lora_run["texts"]
    seen = lora_run["in_memory"]
    in_memory = Classifier(model=seen["model"], tokenizer=seen["tokenizer"], task=seen["task"], max_length=128)
    assert seen["max_length"] == 128
    adapter = load_classifier(out, device="cpu")
    merged = load_classifier(out / "merged", device="cpu")
    assert adapter.labels == merged.labels == ["negative", "positive"]
    reference = in_memory.predict(texts)
    for other in (adapter.predict(texts), merged.predict(texts)):
        for mine, theirs in zip(reference, other):
            assert theirs["label"] == mine["label"]
            for label in ("negative", "positive"):
                assert theirs["scores"][label] == pytest.approx(mine["scores"][label], abs=1e-5)
    np.testing.assert_allclose(adapter.logits(texts), in_memory.logits(texts), atol=1e-5, rtol=0)
    np.testing.assert_allclose(merged.logits(texts), in_memory.logits(texts), atol=1e-5, rtol=0)


def test_lora_folder_loads_with_peft_auto_class(lora_run: dict[str, Any]) -> None:
    from peft import AutoPeftModelForSequenceClassification

    out: Path = lora_run["out"]
    texts = lora_run["texts"]
    model = AutoPeftModelForSequenceClassification.from_pretrained(out, num_labels=2).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    encoded = tokenizer(texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**encoded).logits.numpy()
    np.testing.assert_allclose(logits, load_classifier(out, device="cpu").logits(texts), atol=1e-5, rtol=0)


def test_adapter_names_the_local_base(lora_run: dict[str, Any], tiny_checkpoint: Path) -> None:
    adapter_config = read_json(lora_run["out"] / "adapter_config.json")
    assert adapter_config["base_model_name_or_path"] == str(tiny_checkpoint)
    assert adapter_config["task_type"] == "SEQ_CLS"
    assert lora_run["result"].metrics["base_model"] == str(tiny_checkpoint)


def test_adapter_names_the_hub_id_of_a_checkpoint_that_has_one(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for the bundled MiniLM: loaded from a local folder, known by a Hub id that resolves back to it."""
    from nlp_transfer.modeling import checkpoints

    hub_id = "example-org/tiny-bert"
    real = checkpoints.resolve_checkpoint

    def resolve(model: str, revision: str | None = None, trust_remote_code: bool = False) -> Checkpoint:
        if model in (str(tiny_checkpoint), hub_id):
            return Checkpoint(str(tiny_checkpoint), hub_id, None, trust_remote_code)
        return real(model, revision, trust_remote_code)

    monkeypatch.setattr(checkpoints, "resolve_checkpoint", resolve)  # load_classifier's lookup of the base
    monkeypatch.setattr(plan_module, "resolve_checkpoint", resolve)
    out = tmp_path / "out"
    result = run(tiny_checkpoint, sentiment_files, out, strategy="lora")
    assert read_json(out / "adapter_config.json")["base_model_name_or_path"] == hub_id
    assert result.metrics["base_model"] == hub_id
    assert result.metrics["reload_check"]["passed"] is True


@pytest.mark.filterwarnings("ignore:Could not find a config file in:UserWarning")  # offline: peft cannot look
def test_name_adapter_base_sets_the_hub_id(tmp_path: Path) -> None:
    prepared = prepare(tiny_model("bert"), "lora")
    name_adapter_base(prepared.model, BUNDLED_HUB_ID)
    assert {c.base_model_name_or_path for c in prepared.model.peft_config.values()} == {BUNDLED_HUB_ID}
    prepared.model.save_pretrained(tmp_path / "adapter")
    assert read_json(tmp_path / "adapter" / "adapter_config.json")["base_model_name_or_path"] == BUNDLED_HUB_ID


def test_prepare_keeps_the_context_base_model_id() -> None:
    for strategy, options in (("lora", {}), ("hybrid", {"train_top_layers": 1})):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            prepared = prepare(tiny_model("bert"), strategy, **options)
        assert prepared.model.peft_config["default"].base_model_name_or_path == "local/tiny"


@pytest.mark.parametrize(
    ("kind", "strategy", "expected"),
    [
        ("bert", "lora", ["classifier"]),
        ("distilbert", "lora", ["pre_classifier", "classifier"]),
        ("bert", "hybrid", ["classifier", "bert.encoder.layer.2", "bert.pooler"]),
    ],
)
def test_settings_record_the_modules_to_save(kind: str, strategy: str, expected: list[str]) -> None:
    options = {"train_top_layers": 1} if strategy == "hybrid" else {}
    prepared = prepare(tiny_model(kind), strategy, **options)
    assert prepared.settings["modules_to_save"] == expected


def test_hybrid_with_gradual_unfreezing_end_to_end(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    result = run(
        tiny_checkpoint,
        sentiment_files,
        out,
        strategy="hybrid",
        train_top_layers=1,
        gradual_unfreeze=True,
        num_train_epochs=2,
    )
    metrics = read_json(out / "metrics.json")
    assert metrics == json.loads(json.dumps(result.metrics))
    settings = metrics["strategy_settings"]
    # 24 rows in batches of 8: 3 steps an epoch. Units: head + pooler, layer 1 (in full), layer 0 (LoRA).
    assert settings["unfreeze_history"] == [[0, 1], [3, 2]]
    assert settings["gradual_unfreeze"] is True and settings["layer_lr_decay"] == 0.9
    assert {"classifier", "bert.encoder.layer.1", "bert.pooler"} <= set(settings["modules_to_save"])
    assert metrics["reload_check"]["passed"] is True
    assert (out / "adapter_config.json").is_file() and not (out / "merged").exists()
    assert hidden_entries(tmp_path) == []


# --------------------------------------------------------------------- 6. the reload check stops the run


# The folder reloaded is the hidden staging folder (.out.incomplete), then its merged/ copy.
@pytest.mark.parametrize(("strategy", "broken_folder"), [("full", ".out.incomplete"), ("lora", "merged")])
def test_reload_mismatch_is_an_error_and_publishes_nothing(
    strategy: str,
    broken_folder: str,
    tmp_path: Path,
    tiny_checkpoint: Path,
    sentiment_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = verification_module.load_classifier
    reloaded: list[str] = []

    def perturbed(path, device=None):
        classifier = original(path, device=device)
        reloaded.append(Path(path).name)
        if Path(path).name == broken_folder:
            with torch.no_grad():
                classifier.model.classifier.bias[0] += 1.0
        return classifier

    monkeypatch.setattr(verification_module, "load_classifier", perturbed)
    out = tmp_path / "out"
    extra = {"merge_lora": True} if strategy == "lora" else {}
    with pytest.raises(
        ReloadCheckError, match=rf"/{re.escape(broken_folder)} does not reproduce the trained model.*Nothing was"
    ):
        run(tiny_checkpoint, sentiment_files, out, strategy=strategy, **extra)
    assert reloaded[-1] == broken_folder
    assert not out.exists()
    assert hidden_entries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


# ------------------------------------------------------------------------- 7. gradient checkpointing


@pytest.mark.parametrize("strategy", ["freeze", "lora"])
def test_gradient_checkpointing_runs(
    strategy: str,
    tmp_path: Path,
    tiny_checkpoint: Path,
    sentiment_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    losses: list[float] = []
    checkpointed: list[str] = []
    original = TransferTrainer.train

    def train(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        losses.append(output.metrics["train_loss"])
        checkpointed.extend(type(m).__name__ for m in self.model.modules() if getattr(m, "gradient_checkpointing", 0))
        return output

    monkeypatch.setattr(TransferTrainer, "train", train)
    out = tmp_path / "out"
    extra = {"train_top_layers": 1} if strategy == "freeze" else {}
    run(tiny_checkpoint, sentiment_files, out, strategy=strategy, gradient_checkpointing=True, **extra)
    metrics = read_json(out / "metrics.json")
    assert metrics["reload_check"]["passed"] is True
    assert len(losses) == 1 and math.isfinite(losses[0])
    assert "BertLayer" in checkpointed  # the layers really ran checkpointed
    assert math.isfinite(metrics["eval"]["loss"])
    training = read_json(out / "run_config.json")["training"]
    assert training["gradient_checkpointing"] is True
    assert training["gradient_checkpointing_kwargs"] == {"use_reentrant": False}

    checkpoint = load_file(str(tiny_checkpoint / "model.safetensors"))
    if strategy == "freeze":
        saved = {k.removeprefix("bert."): v for k, v in load_file(str(out / "model.safetensors")).items()}
        frozen = [k for k in checkpoint if k.startswith(("embeddings.", "encoder.layer.0."))]
        trained = [k for k in checkpoint if k.startswith(("encoder.layer.1.", "pooler.")) and k.endswith(".weight")]
        assert frozen and trained
        assert all(torch.equal(saved[k], checkpoint[k]) for k in frozen)
        assert all(not torch.equal(saved[k], checkpoint[k]) for k in trained)
    else:
        adapter = load_file(str(out / "adapter_model.safetensors"))
        lora_b = [v for k, v in adapter.items() if ".lora_B." in k]
        assert len(lora_b) == 4 and all(bool(v.abs().sum() > 0) for v in lora_b)  # initialised to zero


# ------------------------------------------------------------------------------- 8. refusals


def test_unknown_strategy_lists_the_known_ones(tmp_path: Path, sentiment_files: dict[str, Path]) -> None:
    with pytest.raises(UserInputError) as raised:
        get_strategy("adapters")
    message = str(raised.value)
    assert message.startswith("Unknown --strategy 'adapters'. Available: ")
    assert list(STRATEGIES) == ["full", "freeze", "lora", "hybrid", "scratch"]
    assert all(f"{name}: {STRATEGIES[name].summary}" in message for name in STRATEGIES)

    out = tmp_path / "out"
    with pytest.raises(
        UserInputError, match=r"'strategy' .* invalid value 'adapters'; choose one of \['full', 'freeze'"
    ):
        run(Path("unused"), sentiment_files, out, strategy="adapters")
    assert not out.exists() and hidden_entries(tmp_path) == []


def gpt2_model() -> nn.Module:
    config = GPT2Config(n_embd=H, n_layer=2, n_head=HEADS, vocab_size=VOCAB, n_positions=MAX_POS, num_labels=LABELS)
    return AutoModelForSequenceClassification.from_config(config)


@pytest.mark.parametrize(
    ("strategy", "options"),
    [
        ("freeze", {"train_top_layers": 1}),
        ("lora", {}),
        ("hybrid", {"train_top_layers": 1}),
        ("full", {"layer_lr_decay": 0.8}),
        ("full", {"gradual_unfreeze": True}),
    ],
)
def test_unsupported_architecture_is_refused(strategy: str, options: dict[str, Any]) -> None:
    with pytest.raises(UserInputError) as raised:
        prepare(gpt2_model(), strategy, **options)
    message = str(raised.value)
    assert "Model type 'gpt2' is not supported. Supported model types: " in message
    assert all(model_type in message for model_type in SUPPORTED_MODEL_TYPES)


class _RecordingArguments:
    """StrategyArguments that remember which options a strategy read."""

    def __init__(self, args: StrategyArguments) -> None:
        self._args = args
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.read.add(name)
        return getattr(self._args, name)


@pytest.mark.parametrize(
    ("strategy", "options"),
    [
        ("full", {}),
        ("full", {"layer_lr_decay": 0.8, "gradual_unfreeze": True}),
        ("freeze", {"train_top_layers": 1}),
        ("lora", {}),
        ("hybrid", {"train_top_layers": 1, "gradual_unfreeze": True}),
        ("scratch", {}),
    ],
)
def test_a_strategy_reads_only_the_options_it_declares(strategy: str, options: dict[str, Any]) -> None:
    recording = _RecordingArguments(StrategyArguments(strategy=strategy, **options))
    used = StrategyContext(args=recording, learning_rate=BASE_LR, weight_decay=WEIGHT_DECAY, base_model_id="local/tiny")
    get_strategy(strategy).prepare(tiny_model("bert"), used)
    assert recording.read - {"strategy"} <= set(get_strategy(strategy).options)
