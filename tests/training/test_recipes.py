"""Recipes: the learning rate, epochs and evaluation cadence chosen for options left unset, and never for given ones."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from nlp_transfer import RunConfig, fine_tune
from nlp_transfer.config.strategy import StrategyArguments
from nlp_transfer.config.training import TransferTrainingArguments
from nlp_transfer.training import recipes
from nlp_transfer.training.recipes import (
    DEFAULT_EPOCHS,
    EARLY_STOPPING_PATIENCE,
    MAX_EPOCHS,
    MIN_OPTIMIZER_STEPS,
    PROBE_LEARNING_RATE,
    apply_recipe,
    batch_size,
    learning_rate,
    size_factor,
)


def _tiny_run(checkpoint: Path, files: dict[str, Path], tmp_path: Path, **given) -> dict:
    """Options of a run of the tiny checkpoint on the tiny sentiment files, into tmp_path/out."""
    return {
        "model": str(checkpoint),
        "train_file": str(files["train"]),
        "validation_file": str(files["validation"]),
        "output_dir": str(tmp_path / "out"),
        "disable_tqdm": True,
        **given,
    }


def training_args(**given) -> TransferTrainingArguments:
    return TransferTrainingArguments(output_dir="unused", disable_tqdm=True, **given)


def test_size_factor_scales_with_the_square_of_the_width_within_bounds() -> None:
    assert size_factor(768) == 1.0
    assert size_factor(384) == 4.0  # the bundled MiniLM
    assert size_factor(1024) == pytest.approx(0.5625)  # BERT-large
    assert size_factor(128) == 5.0  # capped
    assert size_factor(4096) == 0.5  # floored


@pytest.mark.parametrize(
    ("strategy", "base", "hidden", "options", "expected"),
    [
        ("full", 2e-5, 384, {}, 8e-5),
        ("full", 2e-5, 768, {}, 2e-5),
        ("full", 2e-5, 1024, {}, 1.13e-5),
        ("hybrid", 1e-4, 384, {}, 4e-4),
        ("freeze", 1e-4, 768, {"train_top_layers": 2}, 1e-4),
        ("freeze", 1e-4, 384, {"train_top_layers": 0}, PROBE_LEARNING_RATE),
        ("freeze", 1e-4, 384, {"train_top_layers": 0, "train_embeddings": True}, 4e-4),
        ("lora", 5e-4, 384, {}, 5e-4),
        ("scratch", 5e-4, 384, {}, 5e-4),
    ],
)
def test_default_learning_rate_per_strategy_and_size(
    strategy: str, base: float, hidden: int, options: dict, expected: float
) -> None:
    decision = learning_rate(strategy, base, hidden, StrategyArguments(strategy=strategy, **options))
    assert decision.value == pytest.approx(expected)
    assert decision.reason


def test_a_small_training_set_gets_enough_optimizer_steps() -> None:
    args = training_args()
    recipe = apply_recipe(args, "full", 2e-5, 384, StrategyArguments(), train_rows=58)
    # 58 rows at batch 8: 8 steps per epoch; 200 steps need 25 epochs.
    assert args.num_train_epochs == 25
    assert args.learning_rate == pytest.approx(8e-5)
    assert args.early_stopping_patience == EARLY_STOPPING_PATIENCE
    assert str(args.eval_strategy.value) == str(args.save_strategy.value) == "steps"
    assert args.eval_steps == args.save_steps == 3 * 8  # every 3 epochs: about 10 evaluations
    decisions = recipe.to_dict()
    assert list(decisions) == [
        "per_device_train_batch_size",
        "dataloader_num_workers",
        "learning_rate",
        "num_train_epochs",
        "eval_steps",
        "early_stopping_patience",
    ]
    assert decisions["per_device_train_batch_size"]["value"] == 8
    assert decisions["num_train_epochs"]["value"] == 25
    assert "8 optimizer steps per epoch" in decisions["num_train_epochs"]["reason"]


def test_scratch_gets_raised_epochs_but_no_early_stopping() -> None:
    # scratch_n1000_s0 of the SST-2 grid sat at the majority class for 5 evaluations, and early stopping ended
    # it there at 0.509 accuracy: the baseline would have made transfer look better than it is.
    args = training_args(per_device_train_batch_size=32)
    recipe = apply_recipe(args, "scratch", 5e-4, 384, StrategyArguments(strategy="scratch"), train_rows=1000)
    assert args.num_train_epochs == 7  # 32 steps per epoch: raised to reach 200 steps, as for every strategy
    assert args.early_stopping_patience is None
    decision = recipe.to_dict()["early_stopping_patience"]
    assert decision["value"] is None and "majority class" in decision["reason"]


def test_a_tiny_training_set_stops_at_the_epoch_cap() -> None:
    args = training_args()
    apply_recipe(args, "full", 2e-5, 384, StrategyArguments(), train_rows=3)
    assert args.num_train_epochs == MAX_EPOCHS
    assert args.eval_steps == MAX_EPOCHS // 10


def test_a_large_training_set_keeps_the_default_epochs_and_cadence() -> None:
    args = training_args()
    recipe = apply_recipe(args, "full", 2e-5, 768, StrategyArguments(), train_rows=2000)
    assert args.num_train_epochs == DEFAULT_EPOCHS
    assert str(args.eval_strategy.value) == "epoch"
    assert args.early_stopping_patience is None
    assert set(recipe.decisions) == {
        "per_device_train_batch_size",
        "dataloader_num_workers",
        "learning_rate",
        "num_train_epochs",
    }
    assert args.per_device_train_batch_size == 32
    assert math.ceil(2000 / 32) * DEFAULT_EPOCHS >= MIN_OPTIMIZER_STEPS


def test_a_raised_run_with_few_epochs_keeps_evaluating_each_epoch() -> None:
    args = training_args(per_device_train_batch_size=16)
    recipe = apply_recipe(args, "lora", 5e-4, 384, StrategyArguments(strategy="lora"), train_rows=400)
    # 25 steps per epoch: 8 epochs, evaluated after each (no more than 10 evaluations anyway).
    assert args.num_train_epochs == 8
    assert str(args.eval_strategy.value) == "epoch" and "eval_steps" not in recipe.decisions
    assert args.early_stopping_patience == EARLY_STOPPING_PATIENCE


def test_given_options_are_never_changed() -> None:
    args = training_args(
        learning_rate=3e-5,
        num_train_epochs=2,
        early_stopping_patience=None,
        per_device_train_batch_size=8,
        dataloader_num_workers=0,
    )
    recipe = apply_recipe(args, "full", 2e-5, 384, StrategyArguments(), train_rows=16)
    assert (args.learning_rate, args.num_train_epochs) == (3e-5, 2)
    assert args.early_stopping_patience is None
    assert str(args.eval_strategy.value) == "epoch"
    assert recipe.decisions == {}


def test_given_epochs_leave_the_learning_rate_to_the_recipe() -> None:
    args = training_args(num_train_epochs=3, per_device_train_batch_size=8, dataloader_num_workers=0)
    recipe = apply_recipe(args, "full", 2e-5, 384, StrategyArguments(), train_rows=16)
    assert args.num_train_epochs == 3 and list(recipe.decisions) == ["learning_rate"]


def test_max_steps_is_a_given_length() -> None:
    args = training_args(max_steps=7)
    recipe = apply_recipe(args, "full", 2e-5, 384, StrategyArguments(), train_rows=16)
    assert "num_train_epochs" not in recipe.decisions
    # 16 rows at batch 8 are 2 steps an epoch: 7 steps touch 4 epochs (Trainer needs a number even here).
    assert args.num_train_epochs == 4


def test_a_run_with_max_steps_and_no_epochs_trains_that_many_steps(
    tiny_checkpoint: Path, sentiment_files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nlp_transfer")
    options = _tiny_run(tiny_checkpoint, sentiment_files, tmp_path, max_steps=3)
    record = fine_tune(RunConfig.from_dict(options)).record
    assert record.optimizer_steps == 3
    cost = record.training_cost
    assert (
        f"Training loop {record.train_runtime_s:.0f} s: steps {cost.steps_s:.0f} s, {cost.evaluations} evaluations "
        f"{cost.evaluation_s:.0f} s, {cost.checkpoints} checkpoint saves {cost.checkpoint_s:.0f} s"
    ) in caplog.text


def test_given_early_stopping_and_cadence_are_kept() -> None:
    args = training_args(early_stopping_patience=2, eval_strategy="steps", save_strategy="steps", eval_steps=5)
    recipe = apply_recipe(args, "full", 2e-5, 384, StrategyArguments(), train_rows=16)
    assert args.early_stopping_patience == 2 and args.eval_steps == 5
    assert set(recipe.decisions) == {
        "per_device_train_batch_size",
        "dataloader_num_workers",
        "learning_rate",
        "num_train_epochs",
    }


def test_the_run_records_and_applies_its_recipe(
    tiny_checkpoint: Path, sentiment_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """24 training rows at batch 8 are 3 steps an epoch: at least 60 steps are 20 epochs; the rate for hidden 32."""
    monkeypatch.setattr(recipes, "MIN_OPTIMIZER_STEPS", 60)  # the default's 200 steps cost the suite a minute
    options = _tiny_run(tiny_checkpoint, sentiment_files, tmp_path, early_stopping_patience=1)
    result = fine_tune(RunConfig.from_dict(options))
    recipe = result.record.recipe
    assert recipe["learning_rate"]["value"] == pytest.approx(1e-4)  # 2e-5 x 5 (hidden 32: capped)
    assert recipe["num_train_epochs"]["value"] == 20
    assert "early_stopping_patience" not in recipe  # given
    assert result.record.hyperparameters.learning_rate == pytest.approx(1e-4)
    assert result.record.hyperparameters.num_train_epochs == 20
    assert result.record.epochs < 20, "early stopping after 1 evaluation without improvement ended the run"
    saved = json.loads((tmp_path / "out" / "run_config.json").read_text(encoding="utf-8"))
    assert saved["training"]["learning_rate"] == pytest.approx(1e-4)
    assert saved["training"]["num_train_epochs"] == 20


def test_a_later_evaluation_that_ties_the_best_is_kept(tmp_path: Path) -> None:
    from test_layers import tiny_config
    from transformers import AutoModelForSequenceClassification

    from nlp_transfer.training.trainer import TransferTrainer

    args = TransferTrainingArguments(
        output_dir=str(tmp_path),
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        per_device_train_batch_size=8,
    )
    model = AutoModelForSequenceClassification.from_config(tiny_config("bert"))
    trainer = TransferTrainer(model=model, args=args, eval_dataset=[{"input_ids": [1], "labels": 0}])
    outcomes = []
    for step, accuracy in enumerate([0.5, 0.7, 0.7, 0.6, 0.7], start=1):
        trainer.state.global_step = step * 10
        outcomes.append(trainer._determine_best_metric({"eval_accuracy": accuracy}, None))
    assert outcomes == [True, True, True, False, True]
    assert (trainer.state.best_metric, trainer.state.best_global_step) == (0.7, 50)


@pytest.mark.parametrize(
    ("rows", "multiplier", "expected"),
    [
        (16, 1, 8),
        (624, 1, 8),  # at 16: 39 steps per epoch, 195 over 5 epochs
        (625, 1, 16),  # 40 steps per epoch (the last one short), 200 over 5 epochs
        (1248, 1, 16),
        (1249, 1, 32),
        (60614, 1, 32),
        (1249, 2, 16),  # two processes: 32 per device would be 64 per update, 20 updates per epoch
    ],
)
def test_the_default_batch_is_the_largest_that_keeps_enough_updates(rows: int, multiplier: int, expected: int) -> None:
    decision = batch_size(rows, multiplier)
    assert decision.value == expected
    assert str(rows) in decision.reason


def test_a_given_batch_size_is_kept_and_an_unset_one_is_decided() -> None:
    given = training_args(per_device_train_batch_size=4)
    recipe = apply_recipe(given, "full", 2e-5, 384, StrategyArguments(), train_rows=5000)
    assert given.per_device_train_batch_size == 4 and "per_device_train_batch_size" not in recipe.decisions
    unset = training_args()
    apply_recipe(unset, "full", 2e-5, 384, StrategyArguments(), train_rows=5000)
    assert unset.per_device_train_batch_size == 32
    assert unset.num_train_epochs == DEFAULT_EPOCHS


def test_data_loading_workers_are_chosen_for_the_device() -> None:
    # This machine has no GPU: no worker processes (they would take a core from the model), said why.
    args = training_args()
    assert args.dataloader_num_workers == 0 and "without a CUDA GPU" in args.dataloader_reason
    assert args.dataloader_pin_memory is False  # nothing to pin for: torch would warn on every run
    given = training_args(dataloader_num_workers=3)
    assert given.dataloader_num_workers == 3 and given.dataloader_reason is None
    recipe = apply_recipe(given, "full", 2e-5, 384, StrategyArguments(), train_rows=50)
    assert "dataloader_num_workers" not in recipe.decisions
