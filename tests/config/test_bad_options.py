"""Options, checkpoints and foreign code a user can get wrong: each refused with exit 2, one clear paragraph.

Every refusal names the option, file or value and what to do, and comes without a traceback; the option
checks come before any data or model is read (the training file of those tests does not even exist).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import sentiment_rows, write_csv

from nlp_transfer import outputs
from nlp_transfer.cli.app import main
from nlp_transfer.config.run import RunConfig
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics import load_external_metrics
from nlp_transfer.modeling.checkpoints import check_checkpoint_files, resolve_checkpoint

FAST_FLAGS = ["--num-train-epochs", "1", "--learning-rate", "1e-3", "--disable-tqdm", "true"]
TRAIN_FILES = ("train.csv", "validation.csv")


def _refusal(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error paragraph on stderr, joined into one line (the CLI wraps it at 100 characters)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("error: ") == 1, err
    return " ".join(err[err.index("error: ") :].split())


def _train(tmp_path: Path, model: Path | str, *options: str, data: bool = False) -> int:
    """`nlp-transfer train` into tmp_path/out; without `data`, the training file named does not exist."""
    folder = tmp_path / "data"
    files = [write_csv(folder / name, sentiment_rows(6)) for name in TRAIN_FILES] if data else [folder / "missing.csv"]
    sources = ["--train-file", str(files[0])] + (["--validation-file", str(files[1])] if data else [])
    return main(["train", "--model", str(model), *sources, "--output-dir", str(tmp_path / "out"), *options])


def _copy_checkpoint(source: Path, target: Path, names: list[str]) -> Path:
    target.mkdir(parents=True)
    for name in names:
        shutil.copyfile(source / name, target / name)
    return target


# ------------------------------------------------------------------------------------ training length


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--num-train-epochs", "0"], "--num-train-epochs 0 (without a positive --max-steps) trains nothing"),
        (["--num-train-epochs", "0", "--max-steps", "0"], "untrained, random head"),
        (["--num-train-epochs", "-1"], "--num-train-epochs must be a positive number of passes"),
        (["--num-train-epochs", "nan"], "--num-train-epochs must be a positive number"),
    ],
)
def test_epochs_that_train_nothing_are_refused_before_the_data(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str], options: list[str], words: str
) -> None:
    assert _train(tmp_path, tiny_checkpoint, *options) == 2
    assert words in _refusal(capsys)
    assert not (tmp_path / "out").exists()


def test_zero_epochs_with_max_steps_is_a_run() -> None:
    config = RunConfig.from_dict({"output_dir": "runs/x", "num_train_epochs": 0, "max_steps": 5})
    assert config.training.max_steps == 5


def test_a_zero_learning_rate_stays_a_value() -> None:
    """test_training freezes whole runs with it (the model as it starts), so 0 is accepted, unlike < 0."""
    assert RunConfig.from_dict({"output_dir": "runs/x", "learning_rate": 0.0}).training.learning_rate == 0.0


# ------------------------------------------------------------------------------------- learning rate


@pytest.mark.parametrize(("value", "shown"), [("-1e-3", "-0.001"), ("-2", "-2.0"), ("inf", "inf"), ("nan", "nan")])
def test_a_negative_or_infinite_learning_rate_is_refused(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str], value: str, shown: str
) -> None:
    assert _train(tmp_path, tiny_checkpoint, f"--learning-rate={value}") == 2
    message = _refusal(capsys)
    assert f"--learning-rate must be a positive number (e.g. 2e-5), not {shown}." in message


# -------------------------------------------------------------------------------------------- report_to


def test_an_unknown_report_to_names_the_valid_ones(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, tiny_checkpoint, "--report-to", "tensorbord") == 2
    message = _refusal(capsys)
    assert "--report-to tensorbord is not an integration transformers knows. Did you mean tensorboard?" in message
    assert "Choose from: none, all," in message and "wandb" in message and "mlflow" in message


@pytest.mark.parametrize(
    ("yaml_value", "shown"),
    [("5", "not 5 (int)"), ("\n  tensorboard: true", "not {'tensorboard': True} (dict)"), ("", "not None")],
)
def test_report_to_of_the_wrong_type_in_a_config_file(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str], yaml_value: str, shown: str
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"report_to: {yaml_value}\nnum_train_epochs: 1\n", encoding="utf-8")
    assert _train(tmp_path, tiny_checkpoint, "--config", str(config)) == 2
    message = _refusal(capsys)
    assert "--report-to (report_to in a config file) takes integration names, one or a list" in message
    assert shown in message and "Write 'none' to report nowhere" in message


def test_known_report_to_names_pass() -> None:
    config = RunConfig.from_dict({"output_dir": "runs/x", "report_to": "none"})
    assert config.training.report_to == []
    with pytest.raises(UserInputError, match="--report-to TensorBoard is not an integration"):
        RunConfig.from_dict({"output_dir": "runs/x", "report_to": ["none", "TensorBoard"]})


@pytest.mark.parametrize("word", ["none", "all"])
def test_none_or_all_beside_other_integrations_is_refused(word: str) -> None:
    """Trainer takes 'none' and 'all' only alone; in a list it raised a ValueError from inside transformers."""
    with pytest.raises(UserInputError, match=rf"--report-to {word} stands alone .*not beside other names \({word}, "):
        RunConfig.from_dict({"output_dir": "runs/x", "report_to": [word, "tensorboard"]})


# ------------------------------------------------------------------------------------------ output folder


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: permission bits do not stop root from writing, so a 0o500 folder stays writable",
)
def test_an_output_dir_in_a_read_only_folder_is_refused(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        code = main(["train", "--model", str(tiny_checkpoint), "--output-dir", str(parent / "out"), *FAST_FLAGS])
    finally:
        parent.chmod(0o700)
    assert code == 2
    message = _refusal(capsys)
    assert f"--output-dir {parent / 'out'} cannot be written: {parent} does not accept new files" in message
    assert list(parent.iterdir()) == []


def test_the_probe_file_decides_writability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a read-only parent does to a non-root user, simulated where the tests run as root."""

    def refuse(*args: Any, **kwargs: Any) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", refuse)
    with pytest.raises(UserInputError) as caught:
        outputs.check_output_dir(str(tmp_path / "new" / "out"), overwrite=False)
    assert str(caught.value) == (
        f"--output-dir {tmp_path / 'new' / 'out'} cannot be written: {tmp_path} does not accept new files "
        f"(Permission denied). Choose a folder you can write to, or fix the permissions of {tmp_path}."
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder nobody can create in")
def test_an_output_dir_where_nothing_can_be_created_is_refused(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/proc refuses new files even to root: the probe file, not the permission bits, decides."""
    assert _train(tmp_path, tiny_checkpoint, "--output-dir", "/proc/nlp-transfer-out", *FAST_FLAGS) == 2
    message = _refusal(capsys)
    assert "--output-dir /proc/nlp-transfer-out cannot be written: /proc does not accept new files" in message


@pytest.mark.parametrize("target", ["real-folder", "nowhere"])
def test_an_output_dir_that_is_a_symlink_is_refused(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    if target == "real-folder":
        (tmp_path / target).mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    code = main(["train", "--model", str(tiny_checkpoint), "--train-file", "missing.csv", "--output-dir", str(link)])
    assert code == 2
    message = _refusal(capsys)
    assert f"--output-dir {link} is a symbolic link (to {target})" in message
    assert "give the real folder's path, or a new folder" in message
    assert link.is_symlink()


# ------------------------------------------------------------------------------------------- checkpoints


def test_a_model_folder_without_tokenizer_files_is_refused(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy_checkpoint(tiny_checkpoint, tmp_path / "no-tokenizer", ["config.json", "model.safetensors"])
    assert _train(tmp_path, folder, *FAST_FLAGS, data=True) == 2
    message = _refusal(capsys)
    assert f"--model {folder} has no tokenizer files (none of tokenizer.json, vocab.txt," in message
    assert "every word of every text would become [UNK]" in message
    assert "Copy the tokenizer of the base model into the folder" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "predict"])
def test_truncated_weights_are_refused_naming_the_file(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    folder = _copy_checkpoint(tiny_checkpoint, tmp_path / "truncated", ["config.json", "tokenizer.json"])
    weights = (tiny_checkpoint / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    if command == "train":
        code = _train(tmp_path, folder, *FAST_FLAGS, data=True)
    else:
        code = main(["predict", "--model", str(folder), "--text", "great product"])
    assert code == 2
    message = _refusal(capsys)
    assert f"the weights file {folder / 'model.safetensors'} is truncated or corrupt" in message
    assert "Re-download it, or re-save the model with save_pretrained()" in message


def test_check_checkpoint_files_reads_only_names_and_headers(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The check `plan_run` can make before any data is read; scratch (weights=False) needs no weights."""
    check_checkpoint_files(resolve_checkpoint(str(tiny_checkpoint)))
    folder = _copy_checkpoint(tiny_checkpoint, tmp_path / "broken", ["config.json", "tokenizer.json"])
    (folder / "model.safetensors").write_bytes(b"\x08\x00")
    check_checkpoint_files(resolve_checkpoint(str(folder)), weights=False)
    with pytest.raises(UserInputError, match="is truncated or corrupt"):
        check_checkpoint_files(resolve_checkpoint(str(folder)))
    (folder / "tokenizer.json").unlink()
    with pytest.raises(UserInputError, match="has no tokenizer files"):
        check_checkpoint_files(resolve_checkpoint(str(folder)), weights=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    """One 1-epoch run of the tiny model: a folder with a trained head."""
    root = tmp_path_factory.mktemp("bad-options-run")
    files = [write_csv(root / name, sentiment_rows(6)) for name in TRAIN_FILES]
    out = root / "out"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(
            ["train", "--model", str(tiny_checkpoint), "--train-file", str(files[0]), "--validation-file"]
            + [str(files[1]), "--output-dir", str(out), *FAST_FLAGS]
        )
    assert code == 0, err.getvalue()
    return out


@pytest.mark.parametrize("which", ["tiny", "bundled"])
def test_predict_with_a_checkpoint_without_a_trained_head_is_refused(
    tiny_checkpoint: Path, bundled_tokenizer_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    folder = tiny_checkpoint if which == "tiny" else bundled_tokenizer_path
    assert main(["predict", "--model", str(folder), "--text", "great product"]) == 2
    message = _refusal(capsys)
    assert f"--model {folder} has no trained classification head" in message
    assert "lack classifier.weight, classifier.bias" in message
    assert f"Train a classifier on it first with 'nlp-transfer train --model {folder} --output-dir DIR'" in message


def test_predict_with_a_trained_head_still_answers(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(trained), "--text", "great product"]) == 0
    assert '"label": "' in capsys.readouterr().out


# --------------------------------------------------------------------------------------- foreign metrics


@pytest.fixture()
def local_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """./mymetric/mymetric.py in the working folder: an evaluate metric that leaves a marker file when run."""
    marker = tmp_path / "foreign-code-ran"
    script = tmp_path / "mymetric" / "mymetric.py"
    script.parent.mkdir()
    script.write_text(
        "import pathlib\n\nimport datasets\nimport evaluate\n\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n\n\n"
        "class Mymetric(evaluate.Metric):\n"
        "    def _info(self):\n"
        "        value = datasets.Value('int64')\n"
        "        features = datasets.Features({'predictions': value, 'references': value})\n"
        "        return evaluate.MetricInfo(description='', citation='', features=features)\n\n"
        "    def _compute(self, predictions, references):\n"
        "        return {'mymetric': float(sum(p == r for p, r in zip(predictions, references)))}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    return {"name": "mymetric", "marker": marker, "script": Path("mymetric") / "mymetric.py"}


def test_a_metric_the_package_does_not_ship_needs_trust_remote_code(
    tmp_path: Path, tiny_checkpoint: Path, local_metric: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, tiny_checkpoint, "--metrics", "accuracy,mymetric") == 2
    message = _refusal(capsys)
    assert "--metrics: 'mymetric' is not one of the package's metrics" in message
    assert f"would run Python code from the local file {local_metric['script']} through evaluate.load" in message
    assert "Pass --trust-remote-code (trust_remote_code=True in Python) if you trust that code" in message
    assert not local_metric["marker"].exists()


def test_a_hub_metric_names_the_hub_in_the_refusal() -> None:
    with pytest.raises(UserInputError, match="from the Hugging Face Hub") as caught:
        RunConfig.from_dict({"output_dir": "runs/x", "metrics": "bleurt_xyz"})
    assert "--trust-remote-code" in str(caught.value)
    RunConfig.from_dict({"output_dir": "runs/x", "metrics": "bleurt_xyz", "trust_remote_code": True})


def test_evaluate_refuses_a_foreign_metric_without_running_it(
    trained: Path, local_metric: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    file = write_csv(Path("labelled.csv"), sentiment_rows(4))
    assert main(["evaluate", "--model", str(trained), "--file", str(file), "--metrics", "mymetric"]) == 2
    assert "would run Python code from the local file" in _refusal(capsys)
    assert not local_metric["marker"].exists()


def test_the_metric_loader_runs_a_foreign_metric_only_when_trusted(local_metric: dict[str, Any]) -> None:
    with pytest.raises(UserInputError, match="Pass --trust-remote-code"):
        load_external_metrics(["mymetric"], "single_label", 2)
    assert not local_metric["marker"].exists()
    loaded = load_external_metrics(["mymetric"], "single_label", 2, trust_remote_code=True)
    assert list(loaded) == ["mymetric"] and local_metric["marker"].exists()
