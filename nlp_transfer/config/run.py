"""The whole run: `RunConfig`, the CLI parser built from the argument groups, and reading a --config file.

One run is described by a `RunConfig`, built from five dataclasses that `HfArgumentParser` turns into
the CLI (one argument group each): `ModelArguments`, `DataArguments`, `StrategyArguments`,
`EvaluationArguments` and `TransferTrainingArguments` (transformers' `TrainingArguments` with this
package's defaults and a few run-level options). The same parser reads a YAML/JSON `--config` file, so
the file, the CLI and the Python API accept exactly the same names; CLI flags override the file.
"""

import argparse
import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from nlp_transfer.config.checks import _check_foreign_metrics, _check_metric_name, parse_class_weights
from nlp_transfer.config.data import DataArguments
from nlp_transfer.config.evaluation import EvaluationArguments
from nlp_transfer.config.model import ModelArguments
from nlp_transfer.config.strategy import StrategyArguments
from nlp_transfer.config.training import TransferTrainingArguments
from nlp_transfer.errors import UserInputError


@dataclass
class RunConfig:
    """Everything one run needs. Build it with `from_dict`, `from_file` or `from_args`."""

    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    strategy: StrategyArguments = field(default_factory=StrategyArguments)
    evaluation: EvaluationArguments = field(default_factory=EvaluationArguments)
    training: TransferTrainingArguments = field(default_factory=TransferTrainingArguments)
    config_file: str | None = None
    """The --config file the options came from, if any: an input the output folder must not hold."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Every check that needs no data and no checkpoint, in one place; run by every constructor.

        `fine_tune` runs it again before it touches anything, for a config changed after it was built.
        """
        self.data.check()
        self.strategy.check()
        self.evaluation.check(self.data.task)
        self.training.check()
        if parse_class_weights(self.evaluation.class_weights) is not None and self.training.label_smoothing_factor:
            raise UserInputError("--class-weights and --label-smoothing-factor cannot be combined; choose one.")
        _check_metric_name(self.training.metric_for_best_model, self.evaluation.metric_names())
        _check_foreign_metrics(self.evaluation.metric_names(), self.model.trust_remote_code)

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> "RunConfig":
        """Build from flat option names, as in a config file: {"output_dir": "runs/x", "num_train_epochs": 2}."""
        parser = build_parser()
        _apply_file_defaults(parser, options, source="the options")
        return _config_from_namespace(parser.parse_args([]))

    @classmethod
    def from_file(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "RunConfig":
        """Build from a YAML or JSON file; `overrides` win over the file."""
        parser = build_parser()
        _apply_file_defaults(parser, load_config_file(path), source=str(path))
        if overrides:
            _apply_file_defaults(parser, overrides, source="the overrides")
        config = _config_from_namespace(parser.parse_args([]))
        config.config_file = str(path)
        return config

    @classmethod
    def from_args(cls, argv: list[str], prog: str = "nlp-transfer train") -> "RunConfig":
        """Build from command-line arguments, reading `--config FILE` first and letting flags override it."""
        parser = build_parser(prog=prog)
        pre, _ = _config_flag_parser().parse_known_args(argv)
        if pre.config:
            _apply_file_defaults(parser, load_config_file(pre.config), source=pre.config)
        config = _config_from_namespace(parser.parse_args(argv))
        config.config_file = pre.config
        return config

    def input_paths(self) -> dict[str, str | None]:
        """The local inputs of the run by option name (data files, the model, the config file): the output
        folder may not be or hold any of them."""
        data, training = self.data, self.training
        inputs: dict[str, str | None] = {
            "--train-file": data.train_file,
            "--validation-file": data.validation_file,
            "--test-file": data.test_file,
            "--drop-label-issues": data.drop_label_issues,
            "--model": self.model.model,
            "--config": self.config_file,
            "--resume-from-checkpoint": training.resume_from_checkpoint,
        }
        for name, path in data.eval_files().items():
            inputs[f"--eval-file {name}"] = path
        return inputs

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON-able values, with every token field left out."""
        resolved: dict[str, Any] = {
            "model": dataclasses.asdict(self.model),
            "data": dataclasses.asdict(self.data),
            "strategy": dataclasses.asdict(self.strategy),
            "evaluation": dataclasses.asdict(self.evaluation),
            "training": {k: v for k, v in self.training.to_dict().items() if "token" not in k.lower()},
        }
        return json.loads(json.dumps(resolved, default=str))


ARGUMENT_DATACLASSES = (
    ModelArguments,
    DataArguments,
    StrategyArguments,
    EvaluationArguments,
    TransferTrainingArguments,
)


def build_parser(prog: str = "nlp-transfer train") -> HfArgumentParser:
    """The CLI parser: one argument group per dataclass, plus `--config`."""
    parser = HfArgumentParser(
        ARGUMENT_DATACLASSES,
        prog=prog,
        usage=f"{prog} --output-dir DIR [--model M] [--train-file F ...] [--strategy S] [options]",
        description="Fine-tune a BERT-family encoder for text classification. Every option can also come "
        "from a YAML or JSON --config file (same names, with underscores); flags given here override it. "
        "Names are accepted with dashes or underscores (--learning-rate or --learning_rate).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="FILE", default=None, help="YAML or JSON file of options (flat: name: value)."
    )
    for action in parser._actions:
        if "--bf16" in action.option_strings:
            # Unset means "decide for the machine", so the field defaults to None; HfArgumentParser then wants
            # a value, yet `--bf16` alone must still mean yes, as for every other switch.
            action.nargs, action.const = "?", True
    return parser


def _config_flag_parser() -> argparse.ArgumentParser:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    return pre


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a flat YAML or JSON mapping of option names to values."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"Config file {path} does not exist. Give the path of a YAML or JSON file.")
    text = path.read_text(encoding="utf-8")
    try:
        options = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise UserInputError(f"Config file {path} is not valid {path.suffix.lstrip('.').upper()}: {error}") from None
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise UserInputError(
            f"Config file {path} must hold a mapping of option names to values (e.g. 'num_train_epochs: 2'), "
            f"not a {type(options).__name__}."
        )
    return {str(key).replace("-", "_"): value for key, value in options.items()}


def _apply_file_defaults(parser: HfArgumentParser, options: dict[str, Any], source: str) -> None:
    """Make file options the parser's defaults (so CLI flags override them), converting and checking each."""
    actions = {action.dest: action for action in parser._actions}
    converted: dict[str, Any] = {}
    for raw_key, value in options.items():
        key = raw_key.replace("-", "_")
        if key == "config":
            continue
        action = actions.get(key)
        if action is None:
            hint = difflib.get_close_matches(key, list(actions), n=3)
            suggestion = f" Did you mean: {', '.join(hint)}?" if hint else ""
            raise UserInputError(
                f"Unknown option '{raw_key}' in {source}.{suggestion} Run 'nlp-transfer train --help' for every option."
            )
        converted[key] = _convert_value(action, value, raw_key, source)
    parser.set_defaults(**converted)


def _convert_value(action: argparse.Action, value: Any, name: str, source: str) -> Any:
    """Apply the option's CLI type and choices to a file value; YAML reads '2e-5' as a string, for instance."""
    if value is None:
        return value
    # Lists are fine for list options and for the str-or-list ones of TrainingArguments (report_to, fsdp);
    # a list for a number or a choice is a mistake that would otherwise surface deep inside Trainer.
    takes_list = action.nargs in ("+", "*") or (action.type is str and action.choices is None)
    if isinstance(value, list) and not takes_list:
        raise UserInputError(f"Option '{name}' in {source} takes one value, not the list {value!r}.")
    items = value if isinstance(value, list) else [value]
    converted = []
    for item in items:
        try:
            if isinstance(item, str) and action.type is not None:
                item = action.type(item)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
            raise UserInputError(f"Option '{name}' in {source} has the invalid value {item!r}: {error}") from None
        if action.choices is not None and item not in action.choices:
            raise UserInputError(
                f"Option '{name}' in {source} has the invalid value {item!r}; choose one of {list(action.choices)}."
            )
        converted.append(item)
    return converted if isinstance(value, list) else converted[0]


def _config_from_namespace(namespace: argparse.Namespace) -> RunConfig:
    values = vars(namespace)
    built = []
    for dtype in ARGUMENT_DATACLASSES:
        names = {f.name for f in dataclasses.fields(dtype) if f.init}
        kwargs = {name: value for name, value in values.items() if name in names}
        try:
            built.append(dtype(**kwargs))
        except (ValueError, TypeError) as error:
            raise UserInputError(f"Invalid training options: {error}") from None
    model, data, strategy, evaluation, training = built
    return RunConfig(model=model, data=data, strategy=strategy, evaluation=evaluation, training=training)
