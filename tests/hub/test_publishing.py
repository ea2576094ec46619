"""Issue 5 end to end: the card after a real run, `train --push-to-hub`, `nlp-transfer push`, adapter vs merged.

The Hub is patched at its boundary (`nlp_transfer.hub.push.HfApi`, with the offline test of `check_hub_access`
switched off); a sentinel token in HF_TOKEN must reach the client and nothing else: no file of the output
folder, no log line, no printed output. Without `fake_hub` the tests run offline (conftest), as a machine
with HF_HUB_OFFLINE=1 would.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import sentiment_rows, write_csv
from hub_simulation import FakeApi
from huggingface_hub import ModelCard
from huggingface_hub.errors import HfHubHTTPError
from test_push import _http_error

from nlp_transfer import RunConfig, fine_tune, load_classifier
from nlp_transfer.cli.app import main
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.hub import push as push_module
from nlp_transfer.hub.card import REPO_PLACEHOLDER, render_model_card
from nlp_transfer.hub.upload_plan import REFUSED_FILE, REFUSED_SYMLINK, upload_plan
from nlp_transfer.outputs import OWNER_FILE, staging_path

SENTINEL = "hf_SENTINEL_publishing_0123456789"
BUNDLED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
FAST = {"disable_tqdm": True, "learning_rate": 1e-3, "num_train_epochs": 1}


def _files(folder: Path) -> dict[str, str]:
    return {
        "train_file": str(write_csv(folder / "train.csv", sentiment_rows(12))),
        "validation_file": str(write_csv(folder / "validation.csv", sentiment_rows(6))),
        "test_file": str(write_csv(folder / "test.csv", sentiment_rows(8))),
    }


def _all_files(folder: Path) -> set[str]:
    """Every file under `folder`, as posix paths relative to it, but the package's local record of what it wrote
    (`.nlp-transfer.json`, which stays local): what a whole-folder upload holds."""
    files = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    assert OWNER_FILE in files
    return files - {OWNER_FILE}


def _model_index(card: ModelCard) -> dict[str, dict[str, float]]:
    """split -> metric -> value, as the Hub reads the card's model-index."""
    found: dict[str, dict[str, float]] = {}
    for result in card.data.eval_results or []:
        found.setdefault(result.dataset_split, {})[result.metric_type] = result.metric_value
    return found


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled MiniLM (a local folder) on a few rows, with a test split and a license."""
    root = tmp_path_factory.mktemp("bundled")
    out = root / "out"
    options = {**FAST, **_files(root / "data"), "output_dir": str(out), "license": "apache-2.0"}
    fine_tune(RunConfig.from_dict({**options, "model": "minilm", "max_train_samples": 12}))
    return out


def test_card_parses_and_its_model_index_equals_metrics_json(bundled_run: Path) -> None:
    card = ModelCard.load(bundled_run / "README.md")
    metrics = json.loads((bundled_run / "metrics.json").read_text(encoding="utf-8"))
    # The bundled checkpoint came from site-packages, yet the card names its Hub id.
    assert card.data.base_model == BUNDLED_HUB_ID
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.license == "apache-2.0"
    assert {"nlp-transfer", "strategy-full"} <= set(card.data.tags)
    index = _model_index(card)
    assert set(index) == {"validation", "test"}
    for split, key in (("validation", "eval"), ("test", "test")):
        expected = {name: metrics[key][name] for name in metrics["reported_metrics"] if name in metrics[key]}
        assert index[split] == expected
    assert "loss" not in index["validation"] and "runtime" not in index["validation"]
    assert set(card.data.metrics) == set(index["validation"])


def test_card_body_has_labels_strategy_data_hyperparameters_and_per_class_results(bundled_run: Path) -> None:
    text = (bundled_run / "README.md").read_text(encoding="utf-8")
    metrics = json.loads((bundled_run / "metrics.json").read_text(encoding="utf-8"))
    assert "Labels (2): negative, positive" in text
    assert f"{metrics['trainable_parameters']:,} of" in text
    assert "- train: 12 examples from `train.csv`" in text
    assert "| learning_rate | 0.001 |" in text and "| seed | 42 |" in text
    per_class = metrics["test"]["per_class"]["positive"]
    assert (
        f"| positive | {per_class['precision']:.4f} | {per_class['recall']:.4f} | {per_class['f1']:.4f} | "
        f"{per_class['support']} |" in text
    )
    assert f"| **{metrics['primary_metric']}** |" in text
    assert "## Intended use and limitations" in text
    assert 'pipeline("text-classification"' in text
    assert "/work/" not in text and "site-packages" not in text, "no path of the training machine"


def test_hub_dataset_and_adapter_metadata() -> None:
    metrics = {
        "task": "single_label",
        "strategy": "lora",
        "adapter": True,
        "primary_metric": "accuracy",
        "eval": {"accuracy": 0.8, "macro_f1": 0.75, "loss": 0.5, "runtime": 1.0},
        "trainable_parameters": 10,
        "total_parameters": 100,
        "labels": ["negative", "positive"],
        "dataset": {"name": "nyu-mll/glue", "config": "sst2"},
    }
    card = render_model_card(RunRecord.from_dict(metrics), base_model=BUNDLED_HUB_ID, repo_id="me/sst2-lora")
    assert card.data.datasets == ["nyu-mll/glue"]
    assert card.data.library_name == "peft"
    assert card.data.license is None
    results = card.data.eval_results
    assert {(r.dataset_type, r.dataset_config, r.dataset_split) for r in results} == {
        ("nyu-mll/glue", "sst2", "validation")
    }
    assert {r.metric_type: r.metric_value for r in results} == {"accuracy": 0.8, "macro_f1": 0.75}
    assert 'from_pretrained("me/sst2-lora", num_labels=2)' in card.text
    assert REPO_PLACEHOLDER not in card.text


# ------------------------------------------------------------------------------------------ pushing


@pytest.fixture()
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    api = FakeApi()
    monkeypatch.setattr(push_module, "HfApi", lambda *args, **kwargs: api)
    monkeypatch.setattr(push_module, "get_token", lambda: None)
    monkeypatch.setattr(push_module, "_hub_offline", lambda: False)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    return api


def _no_sentinel_anywhere(folder: Path, *texts: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), f"token found in {path}"
    for text in texts:
        assert SENTINEL not in text


def test_train_push_to_hub_uploads_the_finished_folder_once(
    tmp_path: Path, tiny_checkpoint: Path, fake_hub: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    options = {
        **FAST,
        **_files(tmp_path / "data"),
        "model": str(tiny_checkpoint),
        "output_dir": str(out),
        "push_to_hub": True,
        "hub_model_id": "my-user/sentiment",
        "hub_private_repo": True,
    }
    with caplog.at_level(logging.DEBUG):
        result = fine_tune(RunConfig.from_dict(options))
    # The token checked before training; the push's listing looks for an earlier graph.
    assert fake_hub.names() == ["whoami", "create_repo", "list_repo_files", "create_commit"]
    assert fake_hub.call("whoami")["token"] == SENTINEL
    assert fake_hub.call("create_repo")["repo_id"] == "my-user/sentiment"
    assert fake_hub.call("create_repo")["private"] is True
    assert fake_hub.call("create_commit")["token"] == SENTINEL
    uploaded = {op.path_in_repo for op in fake_hub.call("create_commit")["operations"]}
    # The allow-list takes the whole finished folder: every file training wrote goes, none stays local.
    assert uploaded == _all_files(out)
    assert result.push.refused == []
    assert not any(name.startswith("checkpoint") or name.endswith((".bin", ".pt")) for name in uploaded)
    assert result.push.url.endswith("/commit/abc123")
    # The card written at training already names the repository it is pushed to.
    assert 'model="my-user/sentiment"' in (out / "README.md").read_text(encoding="utf-8")
    run_config = json.loads((out / "run_config.json").read_text(encoding="utf-8"))
    assert run_config["training"]["push_to_hub"] is True
    # The run's records go up with the training machine's paths reduced to names, values unchanged.
    sent = {op.path_in_repo: op.path_or_fileobj for op in fake_hub.call("create_commit")["operations"]}
    uploaded_metrics = json.loads(sent["metrics.json"])
    assert str(tmp_path) not in sent["metrics.json"].decode() and str(tmp_path) not in sent["run_config.json"].decode()
    assert str(tmp_path) in (out / "metrics.json").read_text(encoding="utf-8"), "the local record keeps its paths"
    assert uploaded_metrics["eval"] == result.metrics["eval"]
    assert uploaded_metrics["data_sources"]["train"] == "train.csv"
    _no_sentinel_anywhere(out, caplog.text, json.dumps(result.metrics))


def test_push_to_hub_without_a_repo_id_is_refused_before_training(tmp_path: Path, tiny_checkpoint: Path) -> None:
    out = tmp_path / "out"
    options = {**FAST, **_files(tmp_path / "data"), "model": str(tiny_checkpoint), "output_dir": str(out)}
    with pytest.raises(Exception, match="--hub-model-id"):
        fine_tune(RunConfig.from_dict({**options, "push_to_hub": True}))
    assert not out.exists()


def _push_options(tmp_path: Path, tiny_checkpoint: Path) -> dict[str, Any]:
    options = {**FAST, **_files(tmp_path / "data"), "model": str(tiny_checkpoint), "output_dir": str(tmp_path / "out")}
    return {**options, "push_to_hub": True, "hub_model_id": "my-user/sentiment"}


def test_push_to_hub_offline_is_refused_before_training(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """conftest sets HF_HUB_OFFLINE=1, as a user might: the run stops in plan_run, before any data or weights."""
    with pytest.raises(UserInputError) as raised:
        fine_tune(RunConfig.from_dict(_push_options(tmp_path, tiny_checkpoint)))
    message = str(raised.value)
    assert "--push-to-hub needs the Hugging Face Hub, but HF_HUB_OFFLINE=1" in message
    assert f"nlp-transfer push --model {tmp_path / 'out'} --repo-id my-user/sentiment" in message
    assert [entry.name for entry in raised.traceback if entry.name in ("plan_run", "read_data")] == ["plan_run"]
    assert not (tmp_path / "out").exists() and not staging_path(tmp_path / "out").exists()


def test_push_to_hub_with_a_rejected_token_is_refused_before_training(
    tmp_path: Path, tiny_checkpoint: Path, fake_hub: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    fake_hub.fail["whoami"] = _http_error(HfHubHTTPError, 401, f"Invalid user token {SENTINEL}")
    with caplog.at_level(logging.DEBUG), pytest.raises(UserInputError) as raised:
        fine_tune(RunConfig.from_dict(_push_options(tmp_path, tiny_checkpoint)))
    message = str(raised.value)
    assert "rejected the token (401)" in message and "train without --push-to-hub" in message
    assert [entry.name for entry in raised.traceback if entry.name in ("plan_run", "read_data")] == ["plan_run"]
    assert fake_hub.names() == ["whoami"]
    assert not (tmp_path / "out").exists() and not staging_path(tmp_path / "out").exists()
    _no_sentinel_anywhere(tmp_path, message, caplog.text)


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    root = tmp_path_factory.mktemp("pushable")
    out = root / "out"
    options = {**FAST, **_files(root / "data"), "model": str(tiny_checkpoint), "output_dir": str(out)}
    fine_tune(RunConfig.from_dict(options))
    return out


def _cli(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(list(argv))
    return code, stdout.getvalue(), stderr.getvalue()


def test_cli_push_dry_run_lists_files_with_sizes_and_touches_nothing(
    trained_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push_module, "HfApi", lambda *a, **k: pytest.fail("a dry run builds no Hub client"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(push_module, "get_token", lambda: None)
    before = (trained_folder / "README.md").read_text(encoding="utf-8")
    code, stdout, _ = _cli("push", "--model", str(trained_folder), "--repo-id", "my-user/x", "--dry-run")
    assert code == 0
    assert "model.safetensors" in stdout and "metrics.json" in stdout and "in total" in stdout
    assert (trained_folder / "README.md").read_text(encoding="utf-8") == before


def test_cli_push_dry_run_names_each_file_left_local_with_the_reason(
    tmp_path: Path, trained_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(push_module, "get_token", lambda: None)
    folder = tmp_path / "copy"
    shutil.copytree(trained_folder, folder)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n", encoding="utf-8")
    for name in ("id_rsa", "api_key.txt", "credentials.yaml"):
        (folder / name).write_text("secret\n", encoding="utf-8")
    (folder / "passwd").symlink_to(outside / "passwd")
    (folder / "linked").symlink_to(outside, target_is_directory=True)

    code, stdout, _ = _cli("push", "--model", str(folder), "--repo-id", "my-user/x", "--dry-run")

    assert code == 0
    planned, refused = stdout.split("Not uploaded", 1)
    assert {"model.safetensors", "metrics.json"} <= set(planned.split()) and "in total" in planned
    expected = {"id_rsa": REFUSED_FILE, "api_key.txt": REFUSED_FILE, "credentials.yaml": REFUSED_FILE}
    expected |= {"passwd": REFUSED_SYMLINK, "linked": REFUSED_SYMLINK}
    assert {line.split()[0]: " ".join(line.split()[1:]) for line in refused.splitlines()[1:]} == expected
    assert not set(expected) & set(planned.split())


def test_cli_push_passes_the_options_and_names_the_repo_in_the_card(
    tmp_path: Path, trained_folder: Path, fake_hub: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(trained_folder, folder)
    with caplog.at_level(logging.DEBUG):
        code, stdout, stderr = _cli(
            "push", "--model", str(folder), "--repo-id", "my-org/clf", "--private", "--revision", "dev",
            "--commit-message", "first version",
        )  # fmt: skip
    assert code == 0, stderr
    assert fake_hub.names() == ["create_repo", "create_branch", "list_repo_files", "create_commit"]
    assert fake_hub.call("create_repo")["private"] is True
    assert fake_hub.call("create_branch")["branch"] == "dev"
    commit: dict[str, Any] = fake_hub.call("create_commit")
    assert commit["revision"] == "dev" and commit["commit_message"] == "first version"
    assert "Pushed" in stdout and "my-org/clf" in stdout
    # The uploaded card names the repository; the local folder stays as training wrote it.
    uploaded_card = next(op for op in commit["operations"] if op.path_in_repo == "README.md").path_or_fileobj
    assert isinstance(uploaded_card, bytes)
    text = uploaded_card.decode("utf-8")
    assert 'model="my-org/clf"' in text and REPO_PLACEHOLDER not in text
    assert REPO_PLACEHOLDER in (folder / "README.md").read_text(encoding="utf-8")
    _no_sentinel_anywhere(folder, stdout, stderr, caplog.text)


def test_cli_push_without_a_token_is_a_clear_error(trained_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(push_module, "get_token", lambda: None)
    code, _, stderr = _cli("push", "--model", str(trained_folder), "--repo-id", "my-user/x")
    assert code == 2
    assert "HF_TOKEN" in stderr and "Traceback" not in stderr


# ---------------------------------------------------------------------------------- adapter vs merged


@pytest.fixture(scope="module")
def merged_lora_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    """A LoRA run with --merge-lora: the adapter folder with its merged plain model in merged/."""
    root = tmp_path_factory.mktemp("lora")
    out = root / "lora"
    options = {
        **FAST,
        **_files(root / "data"),
        "model": str(tiny_checkpoint),
        "output_dir": str(out),
        "strategy": "lora",
        "merge_lora": True,
    }
    fine_tune(RunConfig.from_dict(options))
    return out


def test_a_lora_folder_with_its_merged_copy_goes_up_whole(merged_lora_run: Path) -> None:
    files = _all_files(merged_lora_run)
    assert {"adapter_model.safetensors", "merged/model.safetensors", "merged/tokenizer.json"} <= files
    plan = upload_plan(merged_lora_run)
    assert {item.path for item in plan.files} == files
    assert plan.refused == []


def test_lora_folder_and_its_merged_copy_predict_identically(merged_lora_run: Path) -> None:
    from transformers import pipeline

    out = merged_lora_run
    texts = [row["text"] for row in sentiment_rows(10)]
    code_a, adapter_out, _ = _cli(
        "predict", "--model", str(out), "--all-scores", *sum((["--text", t] for t in texts), [])
    )
    code_m, merged_out, _ = _cli(
        "predict", "--model", str(out / "merged"), "--all-scores", *sum((["--text", t] for t in texts), [])
    )
    assert code_a == code_m == 0
    adapter_rows = [json.loads(line) for line in adapter_out.splitlines()]
    merged_rows = [json.loads(line) for line in merged_out.splitlines()]
    assert [r["label"] for r in adapter_rows] == [r["label"] for r in merged_rows]
    for a, m in zip(adapter_rows, merged_rows):
        for label, score in a["scores"].items():
            assert m["scores"][label] == pytest.approx(score, abs=1e-5)
    # The merged folder is a plain transformers model: pipeline loads it as it is.
    theirs = pipeline("text-classification", model=str(out / "merged"), device="cpu")(texts)
    assert [p["label"] for p in theirs] == [r["label"] for r in merged_rows]
    assert load_classifier(out).labels == ["negative", "positive"]


def test_model_index_names_each_split_by_its_own_file() -> None:
    metrics = {
        "task": "single_label",
        "strategy": "full",
        "primary_metric": "accuracy",
        "eval": {"accuracy": 0.8},
        "test": {"accuracy": 0.7},
        "trainable_parameters": 10,
        "total_parameters": 10,
        "labels": ["a", "b"],
        "data_sources": {
            "train": "/home/me/data/train.csv",
            "validation": "10% of train (/home/me/data/train.csv), seed 42",
            "test": "/home/me/data/held_out.csv",
        },
        "decision_thresholds": {"values": {"b": 0.3}, "metric": "accuracy"},
    }
    card = render_model_card(RunRecord.from_dict(metrics), base_model=BUNDLED_HUB_ID)
    names = {r.dataset_split: r.dataset_name for r in card.data.eval_results}
    assert names == {"validation": "train.csv (held-out part)", "test": "held_out.csv"}
    assert "/home/me" not in str(card)
    assert "b 0.300" in card.text and "nlp_transfer.thresholds" in card.text
