"""End-to-end `fine_tune` runs on a tiny random BERT: the output folder, metrics.json, predictions, failures.

Every run trains the session's 2-layer BERT (hidden size 32) for one or two epochs on a few dozen rows, so
each takes seconds. The checks are on behaviour: exactly which files are published, what metrics.json and
config.json say, that the saved model is the one that was evaluated, and that a failed or refused run leaves
the file system as it was.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import sentiment_rows, write_csv

from nlp_transfer import RunConfig, UserInputError, fine_tune, load_classifier
from nlp_transfer.modeling.flops import TokenCounts, training_flops
from nlp_transfer.training import fine_tune as training_module
from nlp_transfer.training.trainer import TransferTrainer

PUBLISHED_FILES = {
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "README.md",
    "metrics.json",
    "run_config.json",
    # Classification runs: the confusion matrix and the reliability diagram of the evaluation.
    "confusion_matrix.png",
    "calibration.png",
    # The package's mark: which command wrote the folder, and every file it wrote (--overwrite-output-dir).
    ".nlp-transfer.json",
}
SENTINEL = "hf_SENTINEL_123"
FAST = {"disable_tqdm": True, "learning_rate": 1e-3, "num_train_epochs": 1}
# Keys of an evaluation that measure the machine, not the model.
TIMING_SUFFIXES = ("runtime", "per_second")


def _options(model: Path, files: dict[str, Path], output_dir: Path, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "model": str(model),
        "train_file": str(files["train"]),
        "validation_file": str(files["validation"]),
        "output_dir": str(output_dir),
        **FAST,
    }
    if "test" in files:
        options["test_file"] = str(files["test"])
    options.update(extra)
    return options


def _run(model: Path, files: dict[str, Path], output_dir: Path, **extra: Any):
    return fine_tune(RunConfig.from_dict(_options(model, files, output_dir, **extra)))


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _model_metrics(evaluation: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evaluation.items() if not k.endswith(TIMING_SUFFIXES)}


def _hidden_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict[str, Any]:
    """One two-epoch run with a test file and a Hub token in the options, shared by the read-only tests."""
    root = tmp_path_factory.mktemp("sentiment-run")
    files = {
        "train": write_csv(root / "data" / "train.csv", sentiment_rows(12)),
        "validation": write_csv(root / "data" / "validation.csv", sentiment_rows(4)),
        "test": write_csv(root / "data" / "test.csv", sentiment_rows(3)),
    }
    out = root / "out"
    result = _run(tiny_checkpoint, files, out, num_train_epochs=2, hub_token=SENTINEL)
    return {"root": root, "files": files, "out": out, "result": result}


# ------------------------------------------------------------------------------------ the output folder


def test_output_folder_holds_exactly_the_published_files(sentiment_run: dict[str, Any]) -> None:
    out: Path = sentiment_run["out"]
    assert sentiment_run["result"].output_dir == out
    assert sorted(p.name for p in out.iterdir()) == sorted(PUBLISHED_FILES)
    assert all(p.is_file() for p in out.iterdir()), "no checkpoint-* or other folders inside"
    assert not [p for p in out.rglob("*") if p.suffix in (".bin", ".pkl", ".pickle", ".pt", ".pth")]
    # Nothing hidden (staging, previous) is left beside the folder: only the data and the output.
    assert sorted(p.name for p in sentiment_run["root"].iterdir()) == ["data", "out"]


def test_config_json_records_label_names_and_problem_type(sentiment_run: dict[str, Any]) -> None:
    config = _read_json(sentiment_run["out"] / "config.json")
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    assert config["problem_type"] == "single_label_classification"
    assert config["architectures"] == ["BertForSequenceClassification"]
    settings = dict(config["nlp_transfer"])
    conformal = settings.pop("conformal")
    assert settings == {
        "version": "0.1.0",
        "max_length": 128,
        "long_text": "truncate-head",
        "primary_metric": "accuracy",
        "label_separator": None,
    }
    assert conformal.keys() == {"score", "rows", "quantiles"} and conformal["rows"] == 8
    # 8 validation rows fit no temperature: the scores stay raw, and the record says why.
    assert _read_json(sentiment_run["out"] / "metrics.json")["calibration"] == {
        "method": "none",
        "reason": "8 validation rows are too few to fit a temperature (20 needed): scores left raw",
    }


def test_metrics_json_records_the_run(sentiment_run: dict[str, Any]) -> None:
    from transformers import AutoModelForSequenceClassification

    out: Path = sentiment_run["out"]
    metrics = _read_json(out / "metrics.json")
    assert metrics == json.loads(json.dumps(sentiment_run["result"].metrics))
    assert metrics["task"] == "single_label"
    assert metrics["strategy"] == "full"
    assert metrics["strategy_settings"] == {
        "trains": "all weights",
        "layer_lr_decay": 1.0,
        "head_lr_multiplier": 1.0,
        "learning_rate": 1e-3,
    }
    assert metrics["primary_metric"] == "accuracy"
    assert metrics["greater_is_better"] is True
    assert {"accuracy", "macro_f1", "f1", "loss"} <= set(metrics["eval"])
    assert 0.0 <= metrics["eval"]["accuracy"] <= 1.0
    assert 0.0 <= metrics["eval"]["macro_f1"] <= 1.0

    model = AutoModelForSequenceClassification.from_pretrained(out)
    parameter_count = sum(p.numel() for p in model.parameters())
    assert metrics["trainable_parameters"] == parameter_count
    assert metrics["total_parameters"] == parameter_count

    assert isinstance(metrics["train_runtime_s"], float) and metrics["train_runtime_s"] > 0
    assert isinstance(metrics["train_samples_per_second"], float) and metrics["train_samples_per_second"] > 0
    assert metrics["epochs"] == 2.0
    assert metrics["labels"] == ["negative", "positive"]
    assert metrics["num_examples"] == {"train": 24, "validation": 8, "test": 6}
    assert metrics["data_sources"] == {name: str(path) for name, path in sentiment_run["files"].items()}
    assert metrics["dropped_rows"] == {}
    assert metrics["max_length"] == 128


def test_test_file_metrics_are_reported_under_test(sentiment_run: dict[str, Any]) -> None:
    metrics = _read_json(sentiment_run["out"] / "metrics.json")
    assert {"accuracy", "macro_f1", "loss"} <= set(metrics["test"])
    # Recompute the test accuracy from the saved classifier: it is the model that was evaluated.
    rows = _read_rows(sentiment_run["files"]["test"])
    predictions = load_classifier(sentiment_run["out"], device="cpu").predict([r["text"] for r in rows])
    correct = sum(p["label"] == r["label"] for p, r in zip(predictions, rows))
    assert metrics["test"]["accuracy"] == pytest.approx(correct / len(rows), abs=1e-12)


def test_eval_metrics_match_the_saved_classifier(sentiment_run: dict[str, Any]) -> None:
    metrics = _read_json(sentiment_run["out"] / "metrics.json")
    rows = _read_rows(sentiment_run["files"]["validation"])
    texts = [r["text"] for r in rows]
    classifier = load_classifier(sentiment_run["out"], device="cpu")
    predictions = classifier.predict(texts)
    correct = sum(p["label"] == r["label"] for p, r in zip(predictions, rows))
    assert metrics["eval"]["accuracy"] == pytest.approx(correct / len(rows), abs=1e-12)
    # The loss pins it down further than accuracy on 8 rows: mean cross-entropy of the saved model's logits.
    logits = torch.from_numpy(classifier.logits(texts))
    targets = torch.tensor([classifier.model.config.label2id[r["label"]] for r in rows])
    loss = torch.nn.functional.cross_entropy(logits, targets).item()
    assert metrics["eval"]["loss"] == pytest.approx(loss, abs=1e-5)


def test_load_classifier_agrees_with_transformers_pipeline(sentiment_run: dict[str, Any]) -> None:
    from transformers import pipeline

    out = sentiment_run["out"]
    texts = [r["text"] for r in _read_rows(sentiment_run["files"]["validation"])] + ["great product", "awful"]
    ours = load_classifier(out, device="cpu").predict(texts)
    theirs = pipeline("text-classification", model=str(out), device="cpu")(texts)
    everything = pipeline("text-classification", model=str(out), device="cpu", top_k=None)(texts)
    for mine, top, full in zip(ours, theirs, everything):
        assert mine["label"] == top["label"]
        assert mine["label"] in ("negative", "positive")
        assert mine["score"] == pytest.approx(top["score"], abs=1e-5)
        assert set(mine["scores"]) == {"negative", "positive"}
        for entry in full:
            assert mine["scores"][entry["label"]] == pytest.approx(entry["score"], abs=1e-5)


def test_hub_token_is_never_written(sentiment_run: dict[str, Any]) -> None:
    out: Path = sentiment_run["out"]
    run_config = _read_json(out / "run_config.json")
    assert not [key for key in run_config["training"] if "token" in key.lower()]
    for path in out.rglob("*"):
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path.name


def test_run_config_holds_the_resolved_options(sentiment_run: dict[str, Any], tiny_checkpoint: Path) -> None:
    run_config = _read_json(sentiment_run["out"] / "run_config.json")
    assert set(run_config) == {"model", "data", "strategy", "evaluation", "training"}
    assert run_config["model"] == {
        "model": str(tiny_checkpoint),
        "revision": None,
        "trust_remote_code": False,
        "pooling": "auto",
        "head_init": "auto",
    }
    assert run_config["data"]["train_file"] == str(sentiment_run["files"]["train"])
    assert run_config["strategy"]["strategy"] == "full"
    assert run_config["strategy"]["merge_lora"] is False
    training = run_config["training"]
    assert training["output_dir"] == str(sentiment_run["out"])  # the target, not the staging folder
    assert training["learning_rate"] == 1e-3
    assert training["num_train_epochs"] == 2
    assert training["metric_for_best_model"] == "accuracy"
    assert training["greater_is_better"] is True
    assert training["label_names"] == ["labels"]


# ---------------------------------------------------------------------------- refusals and failures


def test_non_empty_output_dir_is_refused_and_left_untouched(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"--output-dir .*out is not empty.*--overwrite-output-dir"):
        _run(tiny_checkpoint, sentiment_files, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text(encoding="utf-8") == "earlier work"
    assert _hidden_entries(tmp_path) == []


def test_overwrite_output_dir_replaces_a_folder_the_package_wrote_with_the_new_run(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    _run(tiny_checkpoint, sentiment_files, out)
    (out / "calibration.png").unlink()  # a file the package wrote may be gone; the folder is still its own
    result = _run(tiny_checkpoint, sentiment_files, out, overwrite_output_dir=True, seed=7)
    assert result.output_dir == out
    assert sorted(p.name for p in out.iterdir()) == sorted(PUBLISHED_FILES)
    assert _read_json(out / "run_config.json")["training"]["seed"] == 7
    assert _read_json(out / "metrics.json")["labels"] == ["negative", "positive"]
    assert _hidden_entries(tmp_path) == []


def test_overwrite_output_dir_refuses_a_folder_with_files_the_package_did_not_write(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    _run(tiny_checkpoint, sentiment_files, out)
    (out / "notes.txt").write_text("my notes", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(
        UserInputError, match=r"holds files nlp-transfer did not write: notes\.txt\..*nothing was deleted"
    ):
        _run(tiny_checkpoint, sentiment_files, out, overwrite_output_dir=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _hidden_entries(tmp_path) == []


def test_failed_training_leaves_no_output_and_no_staging_folder(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_train(self, *args, **kwargs):
        # Fail after Trainer has started writing into the staging folder.
        Path(self.args.output_dir, "checkpoint-1").mkdir(parents=True)
        raise RuntimeError("simulated failure in the middle of training")

    monkeypatch.setattr(TransferTrainer, "train", broken_train)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated failure"):
        _run(tiny_checkpoint, sentiment_files, out)
    assert not out.exists()
    assert _hidden_entries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_failed_overwrite_keeps_the_previous_folder(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_train(self, *args, **kwargs):
        raise RuntimeError("simulated failure in the middle of training")

    out = tmp_path / "out"
    _run(tiny_checkpoint, sentiment_files, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(TransferTrainer, "train", broken_train)
    with pytest.raises(RuntimeError, match="simulated failure"):
        _run(tiny_checkpoint, sentiment_files, out, overwrite_output_dir=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _hidden_entries(tmp_path) == []


def test_leftover_staging_folder_of_a_killed_run_is_cleared(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    leftover = tmp_path / ".out.incomplete"
    (leftover / "checkpoint-3").mkdir(parents=True)
    (leftover / "training_args.bin").write_bytes(b"\x80\x04stale pickle")
    out = tmp_path / "out"
    _run(tiny_checkpoint, sentiment_files, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(PUBLISHED_FILES)
    assert _hidden_entries(tmp_path) == []


def test_a_failure_after_a_checkpoint_keeps_it_and_resume_gets_past_it(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(training_module, "evaluate", lambda *args: (_ for _ in ()).throw(RuntimeError("disk full")))
        with pytest.raises(RuntimeError, match="disk full"):
            _run(tiny_checkpoint, sentiment_files, out, num_train_epochs=2)
    assert not out.exists()
    kept = sorted(p.name for p in (tmp_path / ".out.incomplete").iterdir() if p.name.startswith("checkpoint-"))
    assert kept, "training had finished: its checkpoints must survive a failure --resume can get past"

    result = _run(tiny_checkpoint, sentiment_files, out, num_train_epochs=2, resume=True)

    assert result.record.resumed_from_step == result.record.optimizer_steps  # nothing left to train
    assert sorted(p.name for p in out.iterdir()) == sorted(PUBLISHED_FILES)
    assert _hidden_entries(tmp_path) == []


def test_resume_refuses_a_folder_that_holds_a_finished_run(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("{}", encoding="utf-8")
    with pytest.raises(UserInputError, match="already holds a finished run, so there is nothing to resume"):
        _run(tiny_checkpoint, sentiment_files, out, resume=True)


# --------------------------------------------------------------------------------- the three tasks


def test_multi_label_run(tmp_path: Path, tiny_checkpoint: Path) -> None:
    pattern = ["joy;love", "joy", "anger", "", "anger;sadness", "love;joy", "sadness", "joy;sadness"]
    train = [{"text": f"message number {i} about feelings", "labels": pattern[i % 8]} for i in range(24)]
    validation = [{"text": f"another message {i}", "labels": pattern[(i + 3) % 8]} for i in range(8)]
    files = {
        "train": write_csv(tmp_path / "data" / "train.csv", train),
        "validation": write_csv(tmp_path / "data" / "validation.csv", validation),
    }
    out = tmp_path / "out"
    result = _run(tiny_checkpoint, files, out, label_separator=";")

    config = _read_json(out / "config.json")
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"] == {"0": "anger", "1": "joy", "2": "love", "3": "sadness"}
    metrics = _read_json(out / "metrics.json")
    assert metrics == json.loads(json.dumps(result.metrics))
    assert metrics["task"] == "multi_label"
    assert metrics["primary_metric"] == "micro_f1"
    assert metrics["greater_is_better"] is True
    assert {"micro_f1", "macro_f1", "subset_accuracy", "loss"} <= set(metrics["eval"])
    assert metrics["labels"] == ["anger", "joy", "love", "sadness"]
    assert sorted(p.name for p in out.iterdir()) == sorted(PUBLISHED_FILES)

    # Multi-label predictions: a sigmoid per label, as transformers' pipeline scores them.
    from transformers import pipeline

    texts = [r["text"] for r in validation]
    ours = load_classifier(out, device="cpu").predict(texts)
    theirs = pipeline("text-classification", model=str(out), device="cpu", top_k=None)(texts)
    for mine, full in zip(ours, theirs):
        assert set(mine["scores"]) == {"anger", "joy", "love", "sadness"}
        for entry in full:
            assert mine["scores"][entry["label"]] == pytest.approx(entry["score"], abs=1e-5)
        assert mine["labels"] == [name for name, score in mine["scores"].items() if score > 0.5]


def test_regression_run(tmp_path: Path, tiny_checkpoint: Path) -> None:
    train = [{"text": r["text"], "label": 4.5 if r["label"] == "positive" else 0.25} for r in sentiment_rows(12)]
    validation = [{"text": r["text"], "label": 3.75 if r["label"] == "positive" else 1.5} for r in sentiment_rows(4)]
    files = {
        "train": write_csv(tmp_path / "data" / "train.csv", train),
        "validation": write_csv(tmp_path / "data" / "validation.csv", validation),
    }
    out = tmp_path / "out"
    _run(tiny_checkpoint, files, out)

    config = _read_json(out / "config.json")
    assert config["problem_type"] == "regression"
    assert config["id2label"] == {"0": "score"}
    metrics = _read_json(out / "metrics.json")
    assert metrics["task"] == "regression"
    assert metrics["primary_metric"] == "rmse"
    assert metrics["primary_metric_reason"].startswith("regression")
    assert metrics["greater_is_better"] is False
    assert {"mse", "rmse", "mae", "r2", "pearson", "spearman", "loss"} <= set(metrics["eval"])
    assert metrics["eval"]["rmse"] == pytest.approx(math.sqrt(metrics["eval"]["mse"]), rel=1e-9)
    assert "confusion_matrix" not in metrics["eval"] and metrics["plots"] is None
    assert not list(out.glob("*.png"))
    run_config = _read_json(out / "run_config.json")
    assert run_config["training"]["metric_for_best_model"] == "rmse"
    assert run_config["training"]["greater_is_better"] is False

    # The reported MSE is the saved model's: recompute it from its raw scores.
    predictions = load_classifier(out, device="cpu").predict([r["text"] for r in validation])
    assert {p["label"] for p in predictions} == {"score"}
    values = np.array([p["score"] for p in predictions])
    targets = np.array([r["label"] for r in validation])
    assert metrics["eval"]["mse"] == pytest.approx(float(np.mean((values - targets) ** 2)), rel=1e-4)


# ------------------------------------------------------------------------- training options


def test_early_stopping_stops_when_the_metric_does_not_improve(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    result = _run(
        tiny_checkpoint, sentiment_files, out, early_stopping_patience=1, num_train_epochs=20, learning_rate=0.0
    )
    metrics = _read_json(out / "metrics.json")
    # Epoch 1 sets the best accuracy; epoch 2 cannot beat it at learning rate 0, so training stops there.
    assert metrics["epochs"] == 2.0
    assert result.metrics["epochs"] == 2.0
    assert _read_json(out / "run_config.json")["training"]["num_train_epochs"] == 20
    assert sorted(p.name for p in out.iterdir()) == sorted(PUBLISHED_FILES)


def test_early_stopping_patience_below_one_is_refused(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(UserInputError, match="--early-stopping-patience must be at least 1"):
        _run(tiny_checkpoint, sentiment_files, out, early_stopping_patience=0)
    assert not out.exists()
    assert _hidden_entries(tmp_path) == []


def test_learning_rate_defaults_to_the_strategys_rate_for_the_models_size(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    options = _options(tiny_checkpoint, sentiment_files, tmp_path / "out")
    del options["learning_rate"]
    config = RunConfig.from_dict(options)
    result = fine_tune(config)
    assert config.training.learning_rate is None  # the caller's config is left as given
    # full's 2e-5 for BERT-base, x5 (the cap) for the tiny model's hidden size 32.
    assert result.metrics["strategy_settings"]["learning_rate"] == 1e-04
    assert _read_json(result.metrics_path)["recipe"]["learning_rate"]["value"] == 1e-04
    assert _read_json(result.output_dir / "run_config.json")["training"]["learning_rate"] == 1e-04


def test_same_seed_gives_identical_results(tmp_path: Path, tiny_checkpoint: Path, sentiment_run: dict) -> None:
    files = {name: path for name, path in sentiment_run["files"].items()}
    again = _run(tiny_checkpoint, files, tmp_path / "again", num_train_epochs=2, hub_token=SENTINEL)
    first = _read_json(sentiment_run["out"] / "metrics.json")
    second = _read_json(again.metrics_path)
    assert _model_metrics(second["eval"]) == _model_metrics(first["eval"])
    assert _model_metrics(second["test"]) == _model_metrics(first["test"])
    assert (again.output_dir / "model.safetensors").read_bytes() == (
        sentiment_run["out"] / "model.safetensors"
    ).read_bytes()


def test_explicit_zero_learning_rate_reaches_layerwise_groups(
    tmp_path: Path, tiny_checkpoint: Path, sentiment_files: dict[str, Path]
) -> None:
    # 0.0 is a value, not "unset": with layer-wise groups no weight may move.
    from safetensors.torch import load_file

    out = tmp_path / "out"
    result = _run(tiny_checkpoint, sentiment_files, out, learning_rate=0.0, layer_lr_decay=0.5)
    assert result.metrics["strategy_settings"]["learning_rate"] == 0.0
    before = load_file(tiny_checkpoint / "model.safetensors")
    after = load_file(out / "model.safetensors")
    name = "encoder.layer.0.attention.self.query.weight"
    assert torch.equal(after[f"bert.{name}"], before[name])


@pytest.mark.parametrize("class_weights", [None, "1,1"])
def test_gradient_accumulation_makes_the_same_update_as_one_big_batch(
    tmp_path: Path, tiny_checkpoint: Path, class_weights: str | None
) -> None:
    """2 x 8 accumulated = 1 x 16: transformers 5.24 skips the division for models whose forward takes **kwargs."""
    import shutil

    from safetensors.torch import load_file

    model = tmp_path / "no-dropout"
    shutil.copytree(tiny_checkpoint, model)
    config = _read_json(model / "config.json")
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    files = {
        "train": write_csv(tmp_path / "data" / "train.csv", sentiment_rows(16)),
        "validation": write_csv(tmp_path / "data" / "validation.csv", sentiment_rows(4)),
    }
    # One optimizer step of plain SGD in both runs: the weights differ only if the gradients do.
    # Uncalibrated: each run would fold its own temperature into the classifier weights compared here.
    common = {"optim": "sgd", "learning_rate": 0.5, "warmup_steps": 0, "weight_decay": 0.0, "seed": 3}
    common["calibration"] = "none"
    if class_weights:
        common["class_weights"] = class_weights  # equal weights: the package's own loss, same value
    _run(model, files, tmp_path / "big", per_device_train_batch_size=16, **common)
    _run(model, files, tmp_path / "acc", per_device_train_batch_size=8, gradient_accumulation_steps=2, **common)
    _run(model, files, tmp_path / "start", per_device_train_batch_size=16, **{**common, "learning_rate": 0.0})
    big, accumulated, start = (load_file(tmp_path / name / "model.safetensors") for name in ("big", "acc", "start"))
    moved = (big["classifier.weight"] - start["classifier.weight"]).abs().max()
    assert moved > 1e-3, "the step must change the weights for the comparison to mean anything"
    for name, tensor in big.items():
        torch.testing.assert_close(accumulated[name], tensor, rtol=1e-4, atol=1e-6, msg=name)


def test_the_record_counts_the_training_batches_and_splits_the_loop_time(sentiment_run: dict[str, Any]) -> None:
    record = sentiment_run["result"].record
    cost = record.training_cost
    assert record.strategy == "full" and record.epochs == 2
    texts = [row["text"] for row in _read_rows(sentiment_run["files"]["train"])]
    classifier = load_classifier(sentiment_run["out"], device="cpu")
    encoded = classifier.tokenizer(texts, truncation=True, max_length=record.max_length)
    lengths = [len(ids) for ids in encoded["input_ids"]] * 2  # every row once per epoch
    assert (cost.sequences, cost.real_tokens) == (len(lengths), sum(lengths))
    assert cost.padded_tokens >= cost.real_tokens and 0 <= cost.padding_share < 1
    assert cost.flops == pytest.approx(training_flops(classifier.model, TokenCounts.of(lengths)).total)
    assert cost.evaluations == len(record.learning_curve) == 2 and cost.checkpoints >= 1
    assert cost.steps_s + cost.evaluation_s + cost.checkpoint_s == pytest.approx(record.train_runtime_s, abs=1e-3)
    saved = _read_json(sentiment_run["out"] / "metrics.json")["training_cost"]
    assert saved["real_tokens"] == cost.real_tokens and saved["steps_s"] == cost.steps_s


def test_the_precision_left_unset_is_recorded_with_its_reason(sentiment_run: dict[str, Any]) -> None:
    precision = sentiment_run["result"].record.precision
    if torch.cuda.is_available():
        assert precision.used == "bf16" and precision.reason.startswith("bf16 mixed precision")
    else:
        assert (precision.used, precision.reason) == ("fp32", "fp32: no GPU (bf16 is far slower on a CPU)")
