"""Options are checked in one place (`RunConfig.validate`), by every constructor, before any data or weights.

Each refused combination has a test; the refusal wins over a training file that does not exist and
over a checkpoint that cannot be resolved, which shows that nothing was read before it.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest

from nlp_transfer.cli.app import main
from nlp_transfer.config.run import RunConfig
from nlp_transfer.config.strategy import STRATEGY_OPTIONS, StrategyArguments, StrategyName
from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling import checkpoints
from nlp_transfer.modeling.strategies import STRATEGIES
from nlp_transfer.training import data_phase as data_phase_module
from nlp_transfer.training import fine_tune as training
from nlp_transfer.training import plan as plan_module

# (options, the start of the one error they get)
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"strategy": "lora", "gradual_unfreeze": True}, "--gradual-unfreeze applies to full and hybrid, not lora."),
    ({"strategy": "freeze", "layer_lr_decay": 0.8}, "--layer-lr-decay applies to full and hybrid, not freeze."),
    ({"strategy": "full", "lora_r": 16}, "--lora-r applies to lora and hybrid, not full."),
    ({"strategy": "full", "train_top_layers": 4}, "--train-top-layers applies to freeze and hybrid, not full."),
    ({"strategy": "lora", "train_embeddings": True}, "--train-embeddings applies to freeze, not lora."),
    ({"strategy": "scratch", "merge_lora": True}, "--merge-lora applies to lora and hybrid, not scratch."),
    ({"strategy": "freeze", "head_lr_multiplier": 10.0}, "--head-lr-multiplier applies to full and hybrid"),
    ({"strategy": "full", "unfreeze_every_steps": 5}, "--unfreeze-every-steps sets the pace of --gradual-unfreeze"),
    ({"strategy": "lora", "lora_dropout": 1.5}, "--lora-dropout must be at least 0 and below 1, not 1.5."),
    ({"strategy": "lora", "lora_r": 0}, "--lora-r must be at least 1, not 0."),
    ({"strategy": "full", "layer_lr_decay": 1.5}, "--layer-lr-decay must be above 0 and at most 1, not 1.5."),
    ({"strategy": "freeze", "train_top_layers": -1}, "--train-top-layers must be at least 0, not -1."),
    ({"push_to_hub": True}, "--push-to-hub needs --hub-model-id NAME"),
    ({"early_stopping_patience": 0}, "--early-stopping-patience must be at least 1 evaluation."),
    ({"early_stopping_patience": 2, "eval_strategy": "no", "save_strategy": "no"}, "--early-stopping-patience needs"),
    ({"class_weights": "balanced", "label_smoothing_factor": 0.1}, "--class-weights and --label-smoothing-factor"),
    ({"class_weights": "1,abc"}, "--class-weights must be 'balanced' or comma-separated numbers"),
    ({"class_weights": "1,-2"}, "--class-weights must be positive numbers"),
    ({"task": "regression", "class_weights": "balanced"}, "--class-weights applies to classification"),
    ({"task": "regression", "tune_threshold": True}, "--tune-threshold applies to binary and multi-label tasks"),
    ({"metric_for_best_model": "nope"}, "--metric-for-best-model nope is not a metric the package reports"),
    ({"validation_fraction": 1.0}, "--validation-fraction must be between 0 and 1 (exclusive), not 1.0."),
    ({"max_train_samples": 0}, "--max-train-samples must be a positive number, not 0."),
    ({"max_length": 0}, "--max-length must be a positive number of tokens, not 0."),
    ({"dataset_name": "org/data"}, "Give either --dataset-name or local files"),
]


@pytest.mark.parametrize(("options", "message"), REFUSED, ids=[m[:40] for _, m in REFUSED])
def test_each_refused_combination_is_one_clear_error_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UserInputError) as raised:
        RunConfig.from_dict({"output_dir": "unused", "train_file": "data.csv", **options})
    assert str(raised.value).startswith(message)


def _flags(options: dict[str, Any]) -> list[str]:
    argv = []
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


@pytest.mark.parametrize(("options", "message"), REFUSED[:4], ids=[m[:40] for _, m in REFUSED[:4]])
def test_the_command_line_and_a_config_file_refuse_the_same(
    options: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(UserInputError, match=f"^{message}"):
        RunConfig.from_args(["--output-dir", "unused", *_flags(options)])
    config_file = tmp_path / "run.yaml"
    config_file.write_text("".join(f"{name}: {value}\n" for name, value in options.items()), encoding="utf-8")
    with pytest.raises(UserInputError, match=f"^{message}"):
        RunConfig.from_file(config_file, overrides={"output_dir": "unused"})


def test_the_option_error_wins_over_a_missing_train_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = ["train", "--output-dir", str(out), "--train-file", str(tmp_path / "missing.csv")]
    code = main([*argv, "--strategy", "lora", "--gradual-unfreeze", "true"])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--gradual-unfreeze applies to full and hybrid, not lora." in err
    assert "missing.csv" not in err and "Traceback" not in err
    assert not out.exists()


def test_push_without_repository_is_refused_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--output-dir", str(tmp_path / "out"), "--train-file", str(tmp_path / "missing.csv")]
    assert main([*argv, "--push-to-hub", "true"]) == 2
    assert "--push-to-hub needs --hub-model-id" in capsys.readouterr().err


def _untouchable(what: str):
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{what} before the options were checked")

    return refuse


def test_fine_tune_checks_a_config_changed_after_it_was_built_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_module, "check_output_dir", _untouchable("the output folder was looked at"))
    monkeypatch.setattr(plan_module, "resolve_checkpoint", _untouchable("the checkpoint was resolved"))
    monkeypatch.setattr(data_phase_module, "load_data", _untouchable("the data was read"))
    config = RunConfig.from_dict({"output_dir": str(tmp_path / "out"), "train_file": str(tmp_path / "missing.csv")})
    config.strategy.strategy = "lora"
    config.strategy.gradual_unfreeze = True
    with pytest.raises(UserInputError, match="--gradual-unfreeze applies to full and hybrid, not lora"):
        training.fine_tune(config)
    assert not (tmp_path / "out").exists()


def test_the_plan_resolves_the_checkpoint_but_reads_no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first phase: options, output folder, strategy and checkpoint; not a row of data."""
    monkeypatch.setattr(data_phase_module, "load_data", _untouchable("the data was read"))
    config = RunConfig.from_dict({"output_dir": str(tmp_path / "out"), "train_file": str(tmp_path / "missing.csv")})
    plan = training.plan_run(config)
    assert plan.strategy.name == "full" and plan.checkpoint.hub_id == checkpoints.BUNDLED_HUB_ID
    assert plan.args.learning_rate is None, "the recipe chooses it once the model and the data are known"
    assert config.training.learning_rate is None, "the user's options stay as given"
    assert not (tmp_path / "out").exists()


def test_each_strategy_may_be_given_its_own_options() -> None:
    for name, options in STRATEGY_OPTIONS.items():
        given = {option: _non_default(option) for option in options if option != "unfreeze_every_steps"}
        config = RunConfig.from_dict({"output_dir": "unused", "strategy": name, **given})
        assert config.strategy.strategy == name


def _non_default(option: str) -> Any:
    values = {"lora_target": "query", "layer_lr_decay": 0.8, "lora_dropout": 0.2, "head_lr_multiplier": 2.0}
    default = next(f.default for f in dataclasses.fields(StrategyArguments) if f.name == option)
    if option in values:
        return values[option]
    return (not default) if isinstance(default, bool) else default + 1


def test_one_list_of_strategies_everywhere() -> None:
    assert tuple(STRATEGIES) == tuple(STRATEGY_OPTIONS) == typing.get_args(StrategyName)
    declared = {option for options in STRATEGY_OPTIONS.values() for option in options}
    fields = {f.name for f in dataclasses.fields(StrategyArguments)} - {"strategy"}
    assert declared == fields, "every strategy option is read by some strategy, and declared"
