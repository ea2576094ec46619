"""Pooling: what `--pooling auto` reads from a checkpoint, the pooled heads' arithmetic, and folders that reload.

The pooled heads are checked against a hand computation from the encoder's last hidden states (masked mean,
masked max, first token) on tiny random models of every supported architecture; whole runs on conftest's tiny
BERT check that every pooling, as a plain model and as a LoRA adapter, reloads through `load_classifier`,
through transformers' `pipeline` (after `import nlp_transfer`) and through the card's peft snippet with the
same predictions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import sentiment_rows
from test_layers import tiny_config
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, ModernBertConfig, pipeline

import nlp_transfer
from nlp_transfer import RunConfig, fine_tune, load_classifier
from nlp_transfer.config.strategy import StrategyArguments
from nlp_transfer.modeling.checkpoints import Checkpoint
from nlp_transfer.modeling.heads import (
    LOGIT_SCALE,
    OWN_HEAD,
    PoolingChoice,
    classification_config,
    pool,
    resolve_pooling,
)
from nlp_transfer.modeling.layers import SUPPORTED_MODEL_TYPES, architecture_view
from nlp_transfer.modeling.strategies import StrategyContext, count_parameters, get_strategy

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning"),
]

ST_FLAGS = {
    "pooling_mode_cls_token": False,
    "pooling_mode_mean_tokens": False,
    "pooling_mode_max_tokens": False,
    "pooling_mode_mean_sqrt_len_tokens": False,
}


def sentence_transformers_folder(source: Path, target: Path, flag: str) -> Path:
    """A copy of `source` laid out as sentence-transformers saves a model, pooling by `flag`."""
    shutil.copytree(source, target)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (target / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (target / "1_Pooling").mkdir()
    flags = {"word_embedding_dimension": 32, **ST_FLAGS, flag: True}
    (target / "1_Pooling" / "config.json").write_text(json.dumps(flags), encoding="utf-8")
    return target


# ------------------------------------------------------------------------------ 1. what auto chooses


@pytest.mark.parametrize(
    ("flag", "mode", "exact"),
    [
        ("pooling_mode_mean_tokens", "mean", True),
        ("pooling_mode_cls_token", "cls", True),
        ("pooling_mode_max_tokens", "max", True),
        ("pooling_mode_mean_sqrt_len_tokens", "mean", False),
    ],
)
def test_auto_reads_a_sentence_transformers_checkpoint(
    tiny_checkpoint: Path, tmp_path: Path, flag: str, mode: str, exact: bool
) -> None:
    folder = sentence_transformers_folder(tiny_checkpoint, tmp_path / "st", flag)
    config = AutoConfig.from_pretrained(folder)
    choice = resolve_pooling("auto", Checkpoint(str(folder), None), config)
    assert choice.mode == mode
    assert choice.own_head is False
    assert choice.normalize is True, "the folder's modules.json ends in a Normalize module"
    assert f"1_Pooling/config.json says {flag}" in choice.reason
    assert "then L2-normalised (modules.json ends in a Normalize module)" in choice.reason
    assert ("nearest" in choice.reason) is not exact


def test_auto_reads_the_bundled_minilm_as_mean_pooled(bundled_tokenizer_path: Path) -> None:
    config = AutoConfig.from_pretrained(bundled_tokenizer_path)
    choice = resolve_pooling("auto", Checkpoint(str(bundled_tokenizer_path), None), config)
    assert (choice.mode, choice.own_head, choice.normalize) == ("mean", False, True)
    built = classification_config(config, choice)
    assert (built.pooling, built.normalize, built.logit_scale) == ("mean", True, LOGIT_SCALE)


def test_auto_keeps_the_own_head_of_a_plain_checkpoint(tiny_checkpoint: Path) -> None:
    config = AutoConfig.from_pretrained(tiny_checkpoint)
    choice = resolve_pooling("auto", Checkpoint(str(tiny_checkpoint), None), config)
    assert choice == PoolingChoice(
        OWN_HEAD,
        "the checkpoint names no pooling of its own: the bert head reads [CLS] through the pretrained pooler",
        own_head=True,
    )
    assert classification_config(config, choice) is config


@pytest.mark.parametrize("setting", ["mean", "cls"])
def test_auto_follows_modernberts_classifier_pooling(tmp_path: Path, setting: str) -> None:
    ModernBertConfig(classifier_pooling=setting).save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    choice = resolve_pooling("auto", Checkpoint(str(tmp_path), None), config)
    assert (choice.mode, choice.own_head) == (setting, True)
    assert "classifier_pooling" in choice.reason


@pytest.mark.parametrize(("asked", "own_head"), [("cls", True), ("mean", True), ("max", False), ("pooler", True)])
def test_modernbert_pools_cls_and_mean_with_its_own_head(tmp_path: Path, asked: str, own_head: bool) -> None:
    ModernBertConfig(classifier_pooling="cls").save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    choice = resolve_pooling(asked, Checkpoint(str(tmp_path), None), config)
    assert choice.own_head is own_head
    built = classification_config(config, choice)
    if asked in ("cls", "mean"):
        assert built.model_type == "modernbert" and built.classifier_pooling == asked
    if asked == "max":
        assert built.model_type == "nlp-transfer-pooled-modernbert" and built.pooling == "max"


@pytest.mark.parametrize("asked", ["cls", "mean", "max"])
def test_an_explicit_pooling_wins_over_the_checkpoints(tiny_checkpoint: Path, tmp_path: Path, asked: str) -> None:
    folder = sentence_transformers_folder(tiny_checkpoint, tmp_path / "st", "pooling_mode_mean_tokens")
    config = AutoConfig.from_pretrained(folder)
    choice = resolve_pooling(asked, Checkpoint(str(folder), None), config)
    assert choice == PoolingChoice(asked, f"--pooling {asked}", own_head=False)
    assert classification_config(config, choice).pooling == asked


def test_pooling_is_an_option_with_choices() -> None:
    with pytest.raises(SystemExit):
        RunConfig.from_args(["--pooling", "median"])
    assert RunConfig.from_args(["--pooling", "max"]).model.pooling == "max"
    assert RunConfig().model.pooling == "auto"


# ---------------------------------------------------------------------- 2. the pooled heads' arithmetic


def pooled_model(kind: str, mode: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = classification_config(tiny_config(kind), PoolingChoice(mode, "test", own_head=False))
    return AutoModelForSequenceClassification.from_config(config).eval()


def padded_batch(vocab: int) -> dict[str, torch.Tensor]:
    """Two texts, the second shorter and padded (its padding tokens are arbitrary ids, masked out)."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, vocab - 1, (2, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def hand_pooled(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """The pooling written out row by row: only the unmasked tokens of each text count."""
    rows = []
    for states, keep in zip(hidden, mask.bool()):
        tokens = states[keep]
        rows.append({"mean": tokens.mean(0), "max": tokens.max(0).values, "cls": states[0]}[mode])
    return torch.stack(rows)


@pytest.mark.parametrize("mode", ["mean", "max", "cls"])
@pytest.mark.parametrize("kind", SUPPORTED_MODEL_TYPES)
def test_pooled_logits_equal_a_hand_computation(kind: str, mode: str) -> None:
    model = pooled_model(kind, mode)
    batch = padded_batch(model.config.vocab_size)
    encoder = getattr(model, model.base_model_prefix)
    with torch.inference_mode():
        logits = model(**batch).logits
        hidden = encoder(**batch).last_hidden_state
        expected = model.classifier(hand_pooled(hidden, batch["attention_mask"], mode))
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["mean", "max", "cls"])
@pytest.mark.parametrize("kind", SUPPORTED_MODEL_TYPES)
def test_padding_does_not_change_pooled_logits(kind: str, mode: str) -> None:
    model = pooled_model(kind, mode)
    batch = padded_batch(model.config.vocab_size)
    short = {name: tensor[1:, :5] for name, tensor in batch.items()}  # the second text alone, unpadded
    with torch.inference_mode():
        padded = model(**batch).logits[1:]
        alone = model(**short).logits
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)


def test_pool_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="Unknown pooling 'median'"):
        pool(torch.zeros(1, 2, 3), None, "median")


@pytest.mark.parametrize("kind", SUPPORTED_MODEL_TYPES)
def test_a_pooled_model_has_no_pooler_and_one_linear_head(kind: str) -> None:
    model = pooled_model(kind, "mean")
    view = architecture_view(model)
    assert view.pooler is None
    assert model.classifier in view.head
    hidden, labels = model.config.hidden_size, model.config.num_labels
    assert sum(p.numel() for p in model.classifier.parameters()) == hidden * labels + labels


@pytest.mark.parametrize("kind", ["bert", "distilbert", "modernbert"])
def test_a_probe_on_a_pooled_model_trains_exactly_the_linear_head(kind: str) -> None:
    model = pooled_model(kind, "mean")
    args = StrategyArguments(strategy="freeze", train_top_layers=0)
    prepared = get_strategy("freeze").prepare(model, StrategyContext(args, learning_rate=1e-3, weight_decay=0.0))
    trainable, total = count_parameters(prepared.model)
    hidden, labels = model.config.hidden_size, model.config.num_labels
    extra = hidden if kind == "modernbert" else 0  # ModernBERT's final_norm scale sits in the view's head
    assert trainable == hidden * labels + labels + extra
    assert total == sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------- 3. whole runs reload identically


TEXTS = [row["text"] for row in sentiment_rows(3)] + ["great product", "awful and slow, do not buy"]


@pytest.fixture(scope="module")
def pooled_runs(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[tuple[str, str], Path]:
    """One short run per pooling x {full (plain folder), lora (adapter folder, with --merge-lora)}."""
    from conftest import write_csv

    root = tmp_path_factory.mktemp("pooled-runs")
    train = write_csv(root / "train.csv", sentiment_rows(12))
    validation = write_csv(root / "validation.csv", sentiment_rows(4))
    folders = {}
    for pooling in ("pooler", "cls", "mean", "max"):
        for strategy in ("full", "lora"):
            out = root / f"{pooling}-{strategy}"
            options: dict[str, Any] = {
                "model": str(tiny_checkpoint),
                "train_file": str(train),
                "validation_file": str(validation),
                "output_dir": str(out),
                "pooling": pooling,
                "strategy": strategy,
                "num_train_epochs": 1,
                "learning_rate": 1e-3,
                "disable_tqdm": True,
            }
            if strategy == "lora":
                options["merge_lora"] = True
            fine_tune(RunConfig.from_dict(options))
            folders[(pooling, strategy)] = out
    return folders


def pipeline_logits(model: Any, tokenizer: Any) -> np.ndarray:
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    outputs = classify(TEXTS, top_k=None, function_to_apply="none")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return np.array([[next(o["score"] for o in row if o["label"] == label) for label in labels] for row in outputs])


@pytest.mark.parametrize("pooling", ["pooler", "cls", "mean", "max"])
def test_a_plain_folder_of_any_pooling_reloads_identically(
    pooled_runs: dict[tuple[str, str], Path], pooling: str
) -> None:
    out = pooled_runs[(pooling, "full")]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["pooling"]["mode"] == pooling
    assert metrics["pooling"]["head_init"]["method"] == ("random" if pooling == OWN_HEAD else "probe")
    assert metrics["reload_check"]["passed"] is True
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == ("bert" if pooling == OWN_HEAD else "nlp-transfer-pooled-bert")
    assert config.get("pooling") == (None if pooling == OWN_HEAD else pooling)
    reference = load_classifier(out, device="cpu").logits(TEXTS)
    via_pipeline = pipeline_logits(
        AutoModelForSequenceClassification.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    )
    np.testing.assert_allclose(via_pipeline, reference, atol=1e-5, rtol=0)
    classify = pipeline("text-classification", model=str(out), device="cpu")  # from the path, as a user does
    assert [r["label"] for r in classify(TEXTS)] == [p["label"] for p in nlp_transfer.predict(out, TEXTS)]


@pytest.mark.parametrize("pooling", ["pooler", "cls", "mean", "max"])
def test_an_adapter_folder_of_any_pooling_reloads_identically(
    pooled_runs: dict[tuple[str, str], Path], pooling: str, tiny_checkpoint: Path
) -> None:
    from peft import PeftModel

    out = pooled_runs[(pooling, "lora")]
    assert (out / "adapter_config.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["reload_check"]["passed"] is True and set(metrics["reload_check"]["folders"]) == {".", "merged"}
    reference = load_classifier(out, device="cpu").logits(TEXTS)
    # The model card's recipe: the base built from the folder's config.json, then the adapter.
    config = AutoConfig.from_pretrained(out)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint, config=config)
    card_model = PeftModel.from_pretrained(base, out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    encoded = tokenizer(TEXTS, truncation=True, max_length=128, padding=True, return_tensors="pt")
    with torch.inference_mode():
        np.testing.assert_allclose(card_model(**encoded).logits.numpy(), reference, atol=1e-5, rtol=0)
    merged = out / "merged"
    via_pipeline = pipeline_logits(
        AutoModelForSequenceClassification.from_pretrained(merged), AutoTokenizer.from_pretrained(merged)
    )
    np.testing.assert_allclose(via_pipeline, reference, atol=1e-5, rtol=1e-6)  # fp32: logits scaled by 1/T


def test_the_card_of_a_pooled_model_says_to_import_nlp_transfer(pooled_runs: dict[tuple[str, str], Path]) -> None:
    plain = (pooled_runs[("mean", "full")] / "README.md").read_text(encoding="utf-8")
    assert "import nlp_transfer  # registers the pooled head with transformers' Auto classes" in plain
    assert "**mean pooling** (--pooling mean)" in plain
    adapter = (pooled_runs[("max", "lora")] / "README.md").read_text(encoding="utf-8")
    assert "base = AutoModelForSequenceClassification.from_pretrained(" in adapter
    own = (pooled_runs[("pooler", "full")] / "README.md").read_text(encoding="utf-8")
    assert "import nlp_transfer" not in own
