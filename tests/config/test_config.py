"""RunConfig: CLI flags (dashed and underscored), YAML/JSON config files, overrides, validation, to_dict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp_transfer.config.data import DataArguments
from nlp_transfer.config.model import ModelArguments
from nlp_transfer.config.run import RunConfig, build_parser, load_config_file
from nlp_transfer.config.strategy import StrategyArguments
from nlp_transfer.config.training import TransferTrainingArguments, default_precision
from nlp_transfer.errors import UserInputError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _all_keys(value: object) -> list[str]:
    """Every key of a nested dict/list structure."""
    if isinstance(value, dict):
        return [str(k) for k in value] + [k for v in value.values() for k in _all_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _all_keys(v)]
    return []


# ------------------------------------------------------------------------------------------ CLI flags


def test_from_args_accepts_dashed_and_underscored_flags() -> None:
    config = RunConfig.from_args(
        [
            "--output-dir",
            "runs/x",
            "--learning-rate",
            "3e-4",
            "--num_train_epochs",
            "2",
            "--per-device-train-batch-size",
            "8",
            "--report-to",
            "tensorboard",
            "--train_file",
            "train.csv",
            "--text-column",
            "body",
            "--strategy",
            "lora",
            "--model",
            "bert-base-uncased",
        ]
    )
    assert config.training.output_dir == "runs/x"
    assert config.training.learning_rate == pytest.approx(3e-4)
    assert isinstance(config.training.learning_rate, float)
    assert config.training.num_train_epochs == 2.0
    assert config.training.per_device_train_batch_size == 8
    assert config.training.report_to == ["tensorboard"]
    assert config.data.train_file == "train.csv"
    assert config.data.text_column == "body"
    assert config.strategy.strategy == "lora"
    assert config.model.model == "bert-base-uncased"


def test_from_args_underscored_learning_rate_and_data_options() -> None:
    config = RunConfig.from_args(
        ["--learning_rate", "1e-4", "--label-separator", ";", "--max_train_samples", "50", "--task", "multi_label"]
    )
    assert config.training.learning_rate == pytest.approx(1e-4)
    assert config.data.label_separator == ";"
    assert config.data.max_train_samples == 50
    assert config.data.task == "multi_label"


def test_from_args_returns_the_four_argument_dataclasses() -> None:
    config = RunConfig.from_args([])
    assert isinstance(config.model, ModelArguments)
    assert isinstance(config.data, DataArguments)
    assert isinstance(config.strategy, StrategyArguments)
    assert isinstance(config.training, TransferTrainingArguments)


def test_invalid_choice_on_the_command_line_exits_with_argparse_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as excinfo:
        RunConfig.from_args(["--task", "foo"])
    assert excinfo.value.code == 2
    assert "invalid choice: 'foo'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    config = RunConfig.from_dict({})
    training = config.training
    assert training.learning_rate is None  # resolved later by the strategy
    assert training.metric_for_best_model == "auto"
    assert training.num_train_epochs is None  # the recipe decides: 5, or more on a small training set
    assert training.eval_strategy == "epoch"
    assert training.save_strategy == "epoch"
    assert training.load_best_model_at_end is True
    assert training.per_device_eval_batch_size == 64
    assert training.weight_decay == pytest.approx(0.01)
    assert training.save_total_limit == 2  # the best and the latest checkpoint: what --resume needs
    assert training.save_only_model is False  # optimizer and random state too, or a resumed run would differ
    assert training.resume is False
    assert training.early_stopping_patience is None
    assert config.model.model == "minilm"
    assert config.strategy.strategy == "full"
    assert config.data.task == "auto"
    assert config.data.validation_fraction == pytest.approx(0.1)
    assert config.data.train_file is None
    assert config.data.drop_invalid_rows is False


def test_from_args_has_the_same_defaults_as_from_dict() -> None:
    assert RunConfig.from_args([]).to_dict() == RunConfig.from_dict({}).to_dict()


# ----------------------------------------------------------------------------------- config files


def test_yaml_file_values_are_converted_to_option_types(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "run.yaml",
        "learning_rate: 2e-5\n"
        "num_train_epochs: 3\n"
        "output_dir: runs/a\n"
        "report_to: tensorboard\n"
        "load_best_model_at_end: false\n"
        "train-file: data/train.csv\n"
        "label_separator: ';'\n",
    )
    config = RunConfig.from_file(path)
    # PyYAML reads 2e-5 (no dot) as the string '2e-5'; the option's type makes it a float.
    assert isinstance(config.training.learning_rate, float)
    assert config.training.learning_rate == 2e-05
    assert config.training.num_train_epochs == 3
    assert config.training.output_dir == "runs/a"
    assert config.training.report_to == ["tensorboard"]
    assert config.training.load_best_model_at_end is False
    assert config.data.train_file == "data/train.csv"  # dashed key in the file
    assert config.data.label_separator == ";"


def test_load_config_file_reads_yaml_2e_minus_5_as_a_string_then_from_file_makes_it_float(tmp_path: Path) -> None:
    path = _write(tmp_path / "lr.yaml", "learning_rate: 2e-5\n")
    assert load_config_file(path) == {"learning_rate": "2e-5"}
    assert RunConfig.from_file(path).training.learning_rate == 2e-05


def test_json_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "run.json",
        json.dumps(
            {
                "learning_rate": 0.001,
                "num-train-epochs": 2,
                "output_dir": "runs/j",
                "task": "regression",
                "per_device_train_batch_size": 4,
                "report_to": ["tensorboard"],
            }
        ),
    )
    config = RunConfig.from_file(path)
    assert config.training.learning_rate == pytest.approx(0.001)
    assert config.training.num_train_epochs == 2
    assert config.training.output_dir == "runs/j"
    assert config.data.task == "regression"
    assert config.training.per_device_train_batch_size == 4
    assert config.training.report_to == ["tensorboard"]


def test_empty_yaml_file_gives_the_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.yaml", "")
    assert RunConfig.from_file(path).to_dict() == RunConfig.from_dict({}).to_dict()


def test_cli_flags_override_the_config_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.yaml", "num_train_epochs: 3\nlearning_rate: 2e-5\noutput_dir: runs/file\n")
    config = RunConfig.from_args(["--config", str(path), "--num-train-epochs", "1"])
    assert config.training.num_train_epochs == 1.0
    # Options not given on the command line keep the file's values.
    assert config.training.learning_rate == 2e-05
    assert config.training.output_dir == "runs/file"


def test_config_file_without_overrides_applies_through_from_args(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.yaml", "num_train_epochs: 3\nstrategy: lora\n")
    config = RunConfig.from_args(["--config", str(path)])
    assert config.training.num_train_epochs == 3
    assert config.strategy.strategy == "lora"


def test_from_file_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.yaml", "num_train_epochs: 3\nmax_length: 64\n")
    config = RunConfig.from_file(path, overrides={"num_train_epochs": 7})
    assert config.training.num_train_epochs == 7
    assert config.data.max_length == 64


def test_from_dict_accepts_flat_option_names() -> None:
    config = RunConfig.from_dict({"output_dir": "runs/x", "num_train_epochs": 2, "model": "bert-base-uncased"})
    assert config.training.output_dir == "runs/x"
    assert config.training.num_train_epochs == 2
    assert config.model.model == "bert-base-uncased"


# ------------------------------------------------------------------------------------------- errors


def test_unknown_option_in_a_file_names_it_and_suggests_the_close_match(tmp_path: Path) -> None:
    path = _write(tmp_path / "typo.yaml", "num_train_epoch: 2\n")
    with pytest.raises(UserInputError) as excinfo:
        RunConfig.from_args(["--config", str(path)])
    message = str(excinfo.value)
    assert "Unknown option 'num_train_epoch'" in message
    assert "Did you mean: num_train_epochs?" in message
    assert str(path) in message  # the file is named as the source


def test_unknown_option_via_from_file_and_from_dict(tmp_path: Path) -> None:
    path = _write(tmp_path / "typo.yaml", "learning_rat: 1e-4\n")
    with pytest.raises(UserInputError, match=r"Unknown option 'learning_rat'.*Did you mean: learning_rate\?"):
        RunConfig.from_file(path)
    with pytest.raises(UserInputError, match=r"Unknown option 'learning_rat'.*Did you mean: learning_rate\?"):
        RunConfig.from_dict({"learning_rat": 1e-4})


def test_unknown_option_far_from_any_name_has_no_suggestion() -> None:
    with pytest.raises(UserInputError) as excinfo:
        RunConfig.from_dict({"zzzzqqqq": 1})
    assert "Unknown option 'zzzzqqqq'" in str(excinfo.value)
    assert "Did you mean" not in str(excinfo.value)


def test_unconvertible_value_in_a_file_raises_user_input_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yaml", "num_train_epochs: abc\n")
    with pytest.raises(UserInputError, match=r"Option 'num_train_epochs' in .*bad\.yaml has the invalid value 'abc'"):
        RunConfig.from_args(["--config", str(path)])


def test_non_string_value_outside_the_choices_raises_user_input_error() -> None:
    with pytest.raises(UserInputError, match=r"Option 'task' .* invalid value 3; choose one of \['auto'"):
        RunConfig.from_dict({"task": 3})


def test_invalid_training_value_raises_user_input_error() -> None:
    with pytest.raises(UserInputError, match=r"Invalid training options: .*foo"):
        RunConfig.from_dict({"eval_strategy": "foo"})


def test_invalid_choice_in_a_file_raises_user_input_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "task.yaml", "task: foo\n")
    with pytest.raises(UserInputError, match=r"Option 'task' .*invalid value 'foo'.*single_label"):
        RunConfig.from_file(path)


def test_list_for_a_single_valued_option_raises_user_input_error() -> None:
    with pytest.raises(UserInputError, match="num_train_epochs"):
        RunConfig.from_dict({"num_train_epochs": [1, 2]})


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "run.yaml"
    with pytest.raises(UserInputError, match="does not exist") as excinfo:
        RunConfig.from_args(["--config", str(missing)])
    assert str(missing) in str(excinfo.value)
    with pytest.raises(UserInputError, match="does not exist") as excinfo:
        RunConfig.from_file(missing)
    assert str(missing) in str(excinfo.value)


def test_config_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(UserInputError, match=r"must hold a mapping of option names to values.*not a list"):
        RunConfig.from_file(path)


def test_invalid_json_config_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.json", '{"num_train_epochs": 2,')
    with pytest.raises(UserInputError, match=r"broken\.json is not valid JSON"):
        RunConfig.from_file(path)


def test_invalid_yaml_config_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.yaml", "num_train_epochs: [2\n")
    with pytest.raises(UserInputError, match=r"broken\.yaml is not valid YAML"):
        RunConfig.from_file(path)


# ------------------------------------------------------------------------------------------ to_dict


def test_to_dict_leaves_out_every_token_field() -> None:
    config = RunConfig.from_dict({"hub_token": "hf_SENTINEL", "output_dir": "runs/secret"})
    assert config.training.hub_token == "hf_SENTINEL"  # the option itself is accepted
    resolved = config.to_dict()
    assert set(resolved) == {"model", "data", "strategy", "evaluation", "training"}
    assert [key for key in _all_keys(resolved) if "token" in key.lower()] == []
    assert "hf_SENTINEL" not in json.dumps(resolved)
    assert resolved["training"]["output_dir"] == "runs/secret"


def test_to_dict_leaves_out_a_token_given_on_the_command_line() -> None:
    resolved = RunConfig.from_args(["--hub-token", "hf_SENTINEL"]).to_dict()
    assert "hf_SENTINEL" not in json.dumps(resolved)
    assert [key for key in _all_keys(resolved) if "token" in key.lower()] == []


def test_to_dict_is_plain_json_with_the_resolved_values() -> None:
    config = RunConfig.from_dict({"num_train_epochs": 2, "train_file": "t.csv", "learning_rate": 1e-3})
    resolved = config.to_dict()
    assert json.loads(json.dumps(resolved)) == resolved
    assert resolved["training"]["num_train_epochs"] == 2
    assert resolved["training"]["learning_rate"] == pytest.approx(1e-3)
    assert resolved["training"]["eval_strategy"] == "epoch"
    assert resolved["data"]["train_file"] == "t.csv"
    assert resolved["model"] == {
        "model": "minilm",
        "revision": None,
        "trust_remote_code": False,
        "pooling": "auto",
        "head_init": "auto",
    }
    assert resolved["strategy"]["strategy"] == "full"
    assert resolved["strategy"]["train_top_layers"] == 2


# ------------------------------------------------------------------------------------------- parser


def test_build_parser_help_groups() -> None:
    parser = build_parser()
    titles = [group.title for group in parser._action_groups]
    assert "model" in titles
    assert "data" in titles
    assert "strategy" in titles
    training_titles = [t for t in titles if t and t.startswith("training (")]
    assert training_titles == ["training (every transformers TrainingArguments option is accepted)"]

    help_text = parser.format_help()
    for heading in ("\nmodel:\n", "\ndata:\n", "\nstrategy:\n", "\ntraining (every transformers"):
        assert heading in help_text
    assert "--config FILE" in help_text
    assert "--learning-rate" in help_text and "--learning_rate" in help_text


def test_build_parser_prog_and_option_groups_hold_their_options() -> None:
    parser = build_parser(prog="my-prog")
    assert parser.prog == "my-prog"
    groups = {group.title: {a.dest for a in group._group_actions} for group in parser._action_groups}
    assert {"model", "revision", "trust_remote_code"} <= groups["model"]
    assert {"train_file", "text_column", "label_separator", "task"} <= groups["data"]
    assert {"strategy", "train_top_layers", "lora_r", "layer_lr_decay", "gradual_unfreeze"} <= groups["strategy"]
    training = next(dests for title, dests in groups.items() if title and title.startswith("training ("))
    assert {"learning_rate", "num_train_epochs", "early_stopping_patience", "report_to"} <= training


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ({"gpu": False, "bf16_supported": False, "compute_capability": 0}, (False, None, "fp32: no GPU")),
        ({"gpu": True, "bf16_supported": True, "compute_capability": 9}, (True, True, "bf16 mixed precision")),
        ({"gpu": True, "bf16_supported": True, "compute_capability": 7}, (True, False, "bf16 mixed precision")),
        ({"gpu": True, "bf16_supported": False, "compute_capability": 7}, (False, None, "fp32: this GPU has no")),
    ],
)
def test_precision_left_unset_is_chosen_for_the_machine(machine: dict, expected: tuple) -> None:
    choice = default_precision(**machine, fp16=False, tf32=None)
    assert (choice.bf16, choice.tf32) == expected[:2] and choice.reason.startswith(expected[2])


def test_given_precision_options_are_kept() -> None:
    assert default_precision(gpu=True, bf16_supported=True, compute_capability=9, fp16=False, tf32=False).tf32 is False
    assert default_precision(gpu=True, bf16_supported=True, compute_capability=9, fp16=True, tf32=None).bf16 is False


def test_bf16_alone_is_a_switch_and_unset_is_decided_here() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("on a GPU bf16 is used as asked; this checks the CPU's choice and fallback")
    assert RunConfig.from_args(["--output-dir", "x", "--bf16"]).training.precision_fallback == "bf16"
    assert RunConfig.from_args(["--output-dir", "x", "--bf16", "false"]).training.precision_reason is None
    unset = RunConfig.from_args(["--output-dir", "x"]).training
    assert unset.bf16 is False and unset.precision_reason.startswith("fp32: no GPU")
