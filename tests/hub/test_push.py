"""Pushing a trained output folder to the Hub: what goes, what never goes, the token, and the errors.

The Hub is faked at its boundary: a recording `FakeApi` passed as `api=`, or put in place of `HfApi` in
`nlp_transfer.hub.push` so the default client path runs too. One test uses the real `HfApi` under
HF_HUB_OFFLINE=1 (set by conftest), which fails before any request leaves the machine; the checks of
`check_hub_access` that need the Hub run with its offline test switched off (`online`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from hub_simulation import FakeApi
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

from nlp_transfer.errors import UserInputError
from nlp_transfer.hub import push
from nlp_transfer.hub.push import PushResult, check_hub_access, push_folder, resolve_token
from nlp_transfer.hub.upload_plan import (
    REFUSED_FILE,
    REFUSED_FOLDER,
    REFUSED_SPECIAL,
    REFUSED_SYMLINK,
    REFUSED_TOKEN,
    RefusedFile,
    UploadFile,
    format_plan,
    upload_plan,
)

SENTINEL = "hf_SENTINEL_do_not_leak_4f1c2b"
REPO = "my-user/sentiment-minilm"
METRICS = {"task": "single_label", "strategy": "lora", "primary_metric": "accuracy", "eval": {"accuracy": 0.9}}

# What a full fine-tuning output folder ships, and the junk beside it that must stay local.
CLASSIFIER_FILES = {
    "config.json": b'{"architectures": ["BertForSequenceClassification"]}',
    "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
    "tokenizer.json": b'{"version": "1.0"}',
    "tokenizer_config.json": b'{"do_lower_case": true}',
    "special_tokens_map.json": b'{"cls_token": "[CLS]"}',
    "vocab.txt": b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n",
    "README.md": b"---\nlibrary_name: transformers\n---\n# classifier\n",
    "metrics.json": json.dumps(METRICS).encode(),
    "run_config.json": b'{"output_dir": "runs/demo"}',
}
JUNK_FILES = {
    "checkpoint-10/optimizer.pt": b"pickle",
    "checkpoint-10/model.safetensors": b"old weights",
    "optimizer.pt": b"pickle",
    "scheduler.pt": b"pickle",
    "training_args.bin": b"pickle with " + SENTINEL.encode(),
    "trainer_state.json": b"{}",
    "runs/events.out.tfevents.1": b"events",
    ".cache/x": b"cache",
    "hf_token.txt": SENTINEL.encode(),
}
# How the junk is refused: a folder the package does not write is named once, not looked into.
JUNK_REFUSED = [
    RefusedFile(".cache/", REFUSED_FOLDER),
    RefusedFile("checkpoint-10/", REFUSED_FOLDER),
    RefusedFile("hf_token.txt", REFUSED_TOKEN),
    RefusedFile("optimizer.pt", REFUSED_FILE),
    RefusedFile("runs/", REFUSED_FOLDER),
    RefusedFile("scheduler.pt", REFUSED_FILE),
    RefusedFile("trainer_state.json", REFUSED_FILE),
    RefusedFile("training_args.bin", REFUSED_FILE),
]
# Secrets someone left in the run folder: none is a file the package writes.
SECRETS = {"id_rsa": b"-----BEGIN OPENSSH PRIVATE KEY-----", "api_key.txt": b"sk-123", "credentials.yaml": b"a: b"}


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    for relpath, content in files.items():
        path = folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


@pytest.fixture()
def trained(tmp_path: Path) -> Path:
    """A full fine-tuning output folder with Trainer leftovers and a token file beside the classifier."""
    return _write(tmp_path / "runs" / "demo", {**CLASSIFIER_FILES, **JUNK_FILES})


@pytest.fixture()
def adapter(tmp_path: Path) -> Path:
    """A LoRA output folder: adapter weights and config, the classification config, a merged model."""
    return _write(
        tmp_path / "runs" / "lora",
        {
            "adapter_model.safetensors": b"adapter weights",
            "adapter_config.json": b'{"peft_type": "LORA"}',
            "config.json": b"{}",
            "tokenizer.json": b"{}",
            "merged/model.safetensors": b"merged weights",
            "merged/config.json": b"{}",
            "merged/tokenizer.json": b"{}",
            "metrics.json": json.dumps(METRICS).encode(),
            "confusion_matrix.png": b"\x89PNG",
            "checkpoint-4/adapter_model.safetensors": b"old",
        },
    )


@pytest.fixture()
def hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_TOKEN holds the sentinel; no saved login is consulted."""
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    monkeypatch.setattr(push, "get_token", lambda: None)


@pytest.fixture()
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(push, "get_token", lambda: None)


@pytest.fixture()
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """`check_hub_access` as on a machine with HF_HUB_OFFLINE unset, in a single process (no torchrun RANK)."""
    monkeypatch.setattr(push, "_hub_offline", lambda: False)
    monkeypatch.delenv("RANK", raising=False)


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A folder beside the run folder with a file and a config.json: what a symlink could expose."""
    return _write(tmp_path / "outside", {"secret.txt": SENTINEL.encode(), "config.json": b"{}"})


def _uploaded(api: FakeApi) -> dict[str, str]:
    """path in the repo -> the local file it is read from, for the one commit."""
    return {op.path_in_repo: str(op.path_or_fileobj) for op in api.call("create_commit")["operations"]}


def _http_error(cls: type[HfHubHTTPError], status: int, message: str = "error") -> HfHubHTTPError:
    response = SimpleNamespace(status_code=status, headers={}, request=None)
    return cls(message, response=response)


# ------------------------------------------------------------------------------------------- plan


def test_plan_lists_exactly_the_classifier_files_with_their_sizes(trained: Path) -> None:
    plan = upload_plan(trained)
    assert plan.files == [UploadFile(path, len(CLASSIFIER_FILES[path])) for path in sorted(CLASSIFIER_FILES)]
    assert plan.refused == JUNK_REFUSED


def test_plan_of_an_adapter_folder_has_the_adapter_and_the_merged_model(adapter: Path) -> None:
    plan = upload_plan(adapter)
    paths = [item.path for item in plan.files]
    assert paths == sorted(
        [
            "adapter_config.json",
            "adapter_model.safetensors",
            "config.json",
            "confusion_matrix.png",
            "merged/config.json",
            "merged/model.safetensors",
            "merged/tokenizer.json",
            "metrics.json",
            "tokenizer.json",
        ]
    )
    assert {item.path: item.size for item in plan.files}["merged/model.safetensors"] == len(b"merged weights")
    assert plan.refused == [RefusedFile("checkpoint-4/", REFUSED_FOLDER)]


def test_every_file_a_real_model_may_write_goes_and_every_other_name_stays(trained: Path) -> None:
    """BPE, sentencepiece and WordPiece tokenizers, a generation config, the plots, also in merged/."""
    keep = ["vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model", "spm.model"]
    keep += ["added_tokens.json", "generation_config.json", "confusion_matrix.png", "calibration.png"]
    keep += ["merged/tokenizer_config.json", "merged/special_tokens_map.json", "merged/vocab.json"]
    drop = [
        "token",
        "HF_TOKEN.txt",
        "hub-token.json",
        "my_tokens.json",
        "stored_tokens",
        "token.model",
        "merged/hf_token",
        "secrets/Token.yaml",
        "token_dir/notes.txt",
        ".huggingface/token",
        ".env",
        "train.log",
        "loss_curve.png",
        "pytorch_model.bin",
        "merged/.cache/huggingface/x",
        "merged/checkpoint-3/model.safetensors",
        "merged/optimizer.pt",
        "merged/merged/config.json",
        "rng_state_0.pth",
    ]
    _write(trained, dict.fromkeys(keep + drop, b"x"))
    plan = upload_plan(trained)
    assert {item.path for item in plan.files} == set(CLASSIFIER_FILES) | set(keep)
    refused = {item.path: item.reason for item in plan.refused}
    assert set(refused) - {item.path for item in JUNK_REFUSED} == {
        "token",
        "HF_TOKEN.txt",
        "hub-token.json",
        "my_tokens.json",
        "stored_tokens",
        "token.model",
        "merged/hf_token",
        "secrets/",
        "token_dir/",
        ".huggingface/",
        ".env",
        "train.log",
        "loss_curve.png",
        "pytorch_model.bin",
        "merged/.cache/",
        "merged/checkpoint-3/",
        "merged/optimizer.pt",
        "merged/merged/",
        "rng_state_0.pth",
    }
    assert (refused["HF_TOKEN.txt"], refused["token.model"], refused["token_dir/"]) == (REFUSED_TOKEN,) * 3
    assert (refused["pytorch_model.bin"], refused["merged/merged/"]) == (REFUSED_FILE, REFUSED_FOLDER)


def _plant_secret(name: str) -> Any:
    def plant(folder: Path, outside: Path) -> tuple[str, str]:
        _write(folder, {name: SECRETS[name]})
        return name, REFUSED_FILE

    return plant


def _plant_file_link(folder: Path, outside: Path) -> tuple[str, str]:
    (folder / "passwd").symlink_to(outside / "secret.txt")
    return "passwd", REFUSED_SYMLINK


def _plant_folder_link(folder: Path, outside: Path) -> tuple[str, str]:
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    return "linked", REFUSED_SYMLINK


@pytest.mark.usefixtures("no_token")
@pytest.mark.parametrize(
    "plant",
    [*(_plant_secret(name) for name in SECRETS), _plant_file_link, _plant_folder_link],
    ids=[*SECRETS, "symlink-to-a-file-outside", "symlinked-folder"],
)
def test_what_the_package_does_not_write_stays_local_and_the_dry_run_names_it(
    trained: Path, outside: Path, plant: Any
) -> None:
    name, reason = plant(trained, outside)
    result = push_folder(trained, REPO, dry_run=True)
    assert not any(item.path == name or item.path.startswith(f"{name}/") for item in result.files)
    assert RefusedFile(name, reason) in result.refused
    planned, refused = format_plan(result.files, result.refused).split("Not uploaded", 1)
    assert name not in planned
    assert [line.split() for line in refused.splitlines()[1:] if line.split()[0] == name] == [[name, *reason.split()]]


def test_a_symlink_to_a_file_outside_is_refused_even_under_an_allowed_name(trained: Path, outside: Path) -> None:
    (trained / "passwd").symlink_to(outside / "secret.txt")
    (trained / "vocab.txt").unlink()
    (trained / "vocab.txt").symlink_to(outside / "secret.txt")
    plan = upload_plan(trained)
    assert {"passwd", "vocab.txt"}.isdisjoint(item.path for item in plan.files)
    assert {RefusedFile("passwd", REFUSED_SYMLINK), RefusedFile("vocab.txt", REFUSED_SYMLINK)} <= set(plan.refused)


def test_a_symlinked_folder_is_refused_and_not_looked_into(trained: Path, outside: Path) -> None:
    (trained / "merged").symlink_to(outside, target_is_directory=True)
    (trained / "linked").symlink_to(outside, target_is_directory=True)
    plan = upload_plan(trained)
    assert [item.path for item in plan.files] == sorted(CLASSIFIER_FILES)
    assert {RefusedFile("merged", REFUSED_SYMLINK), RefusedFile("linked", REFUSED_SYMLINK)} <= set(plan.refused)
    assert not any(item.path.startswith(("merged/", "linked/")) for item in plan.refused)


def test_a_symlink_inside_merged_is_refused(adapter: Path, outside: Path) -> None:
    (adapter / "merged" / "tokenizer.json").unlink()
    (adapter / "merged" / "tokenizer.json").symlink_to(outside / "config.json")
    plan = upload_plan(adapter)
    assert "merged/tokenizer.json" not in {item.path for item in plan.files}
    assert RefusedFile("merged/tokenizer.json", REFUSED_SYMLINK) in plan.refused


def test_a_fifo_is_refused_without_being_read(trained: Path) -> None:
    """A FIFO under an allowed name would block a reader forever: it is never opened."""
    (trained / "vocab.txt").unlink()
    os.mkfifo(trained / "vocab.txt")
    plan = upload_plan(trained)
    assert RefusedFile("vocab.txt", REFUSED_SPECIAL) in plan.refused
    assert "vocab.txt" not in {item.path for item in plan.files}


def test_plan_accepts_sharded_safetensors_with_their_index(tmp_path: Path) -> None:
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    folder = _write(
        tmp_path / "sharded",
        {
            "config.json": b"{}",
            "model.safetensors.index.json": json.dumps(index).encode(),
            "model-00001-of-00002.safetensors": b"1",
            "model-00002-of-00002.safetensors": b"2",
        },
    )
    assert len(upload_plan(folder).files) == 4
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(UserInputError, match="model-00002-of-00002.safetensors"):
        upload_plan(folder)


@pytest.mark.parametrize(
    ("files", "folder_name", "message"),
    [
        ({k: v for k, v in CLASSIFIER_FILES.items() if k != "config.json"}, "demo", "no config.json"),
        (CLASSIFIER_FILES, ".demo.incomplete", "staging folder of an unfinished run"),
        ({"config.json": b"{}", "pytorch_model.bin": b"pickle"}, "demo", "no safetensors weights"),
        ({"config.json": b"{}", "checkpoint-10/model.safetensors": b"w"}, "demo", "no safetensors weights"),
        ({"config.json": b"{}", "adapter_model.safetensors": b"w"}, "demo", "no adapter_config.json"),
    ],
    ids=["no-config", "staging", "pickled-weights-only", "weights-only-in-checkpoint", "adapter-without-config"],
)
def test_plan_refuses_what_is_not_a_finished_classifier(
    tmp_path: Path, files: dict[str, bytes], folder_name: str, message: str
) -> None:
    folder = _write(tmp_path / folder_name, files)
    with pytest.raises(UserInputError, match=message):
        upload_plan(folder)


def test_plan_refuses_a_missing_folder_and_a_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="does not exist"):
        upload_plan(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        upload_plan(tmp_path / "file")


def test_format_plan_shows_each_file_its_size_and_a_total() -> None:
    text = format_plan([UploadFile("config.json", 612), UploadFile("model.safetensors", 86_700_000)])
    lines = text.splitlines()
    assert "config.json" in lines[0] and lines[0].endswith("612 B")
    assert "model.safetensors" in lines[1] and lines[1].endswith("86.7 MB")
    assert lines[-1].strip() == "2 files, 86.7 MB in total"
    assert format_plan([UploadFile("config.json", 1_234)]).splitlines()[-1].strip() == "1 file, 1.2 kB in total"
    assert format_plan([UploadFile("config.json", 1)], []) == format_plan([UploadFile("config.json", 1)])


def test_format_plan_names_each_refused_path_with_its_reason_after_the_total() -> None:
    refused = [RefusedFile("id_rsa", REFUSED_FILE), RefusedFile("passwd", REFUSED_SYMLINK)]
    lines = format_plan([UploadFile("config.json", 612)], refused).splitlines()
    assert lines[1].strip() == "1 file, 612 B in total"
    assert lines[2] == "Not uploaded (2, left in the folder):"
    assert lines[3].split() == ["id_rsa", *REFUSED_FILE.split()]
    assert lines[4].split() == ["passwd", *REFUSED_SYMLINK.split()]
    assert len(lines) == 5


# ------------------------------------------------------------------------------------------- push


@pytest.mark.usefixtures("hub_env")
def test_push_sends_exactly_the_plan_in_one_commit_with_the_options(trained: Path) -> None:
    api = FakeApi()
    result = push_folder(trained, REPO, private=True, revision="experiments", api=api)

    assert api.names() == ["create_repo", "create_branch", "list_repo_files", "create_commit"]
    repo = api.call("create_repo")
    assert repo == {"repo_id": REPO, "token": SENTINEL, "private": True, "repo_type": "model", "exist_ok": True}
    branch = api.call("create_branch")
    assert (branch["repo_id"], branch["branch"], branch["token"], branch["exist_ok"]) == (
        REPO,
        "experiments",
        SENTINEL,
        True,
    )
    commit = api.call("create_commit")
    assert (commit["repo_id"], commit["revision"], commit["create_pr"], commit["token"]) == (
        REPO,
        "experiments",
        False,
        SENTINEL,
    )
    assert commit["commit_message"] == "Upload nlp-transfer classifier (strategy lora, accuracy=0.9000 on validation)"

    uploaded = _uploaded(api)
    assert sorted(uploaded) == sorted(CLASSIFIER_FILES)
    # Every file is read from the folder; the card goes as its text with the repository id filled in.
    records = ("README.md", "metrics.json", "run_config.json")
    assert all(Path(source) == trained / path for path, source in uploaded.items() if path not in records)
    card = next(op for op in commit["operations"] if op.path_in_repo == "README.md").path_or_fileobj
    assert card == (trained / "README.md").read_bytes().replace(b"PATH/TO/MODEL", repo["repo_id"].encode())
    for junk in ("checkpoint", "optimizer", "scheduler", "training_args", "trainer_state", "runs/", "token.txt"):
        assert not any(junk in path for path in uploaded), junk

    plan = upload_plan(trained)
    assert result == PushResult(
        repo_id=REPO,
        revision="experiments",
        files=plan.files,
        dry_run=False,
        url=f"https://huggingface.co/{REPO}/commit/abc123",
        pr_url=None,
        refused=plan.refused,
    )


@pytest.mark.usefixtures("hub_env")
def test_push_builds_its_own_hub_client_when_none_is_given(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeApi()
    factory = mock.Mock(return_value=fake)
    monkeypatch.setattr(push, "HfApi", factory)

    result = push_folder(trained, REPO, commit_message="first version")

    factory.assert_called_once()
    assert SENTINEL not in repr(factory.call_args)  # the token goes with each call, not into the client
    assert fake.names() == ["create_repo", "list_repo_files", "create_commit"]  # main: no branch to create
    commit = fake.call("create_commit")
    assert (commit["commit_message"], commit["revision"], commit["token"]) == ("first version", "main", SENTINEL)
    assert fake.call("create_repo")["private"] is False
    assert sorted(_uploaded(fake)) == sorted(CLASSIFIER_FILES)
    assert result.url and result.revision == "main"


@pytest.mark.usefixtures("hub_env")
def test_the_token_is_in_no_file_log_record_or_result(trained: Path, caplog: pytest.LogCaptureFixture) -> None:
    (trained / "training_args.bin").unlink()  # the fixture's junk holds the sentinel on purpose
    (trained / "hf_token.txt").unlink()
    caplog.set_level(logging.DEBUG)

    result = push_folder(trained, REPO, revision="v2", api=FakeApi())

    assert caplog.records, "the push logs what it sends and where"
    assert any(REPO in record.getMessage() for record in caplog.records)
    for record in caplog.records:
        assert SENTINEL not in record.getMessage()
        assert SENTINEL not in repr(record.args)
    assert SENTINEL not in repr(result)
    for path in trained.parent.rglob("*"):
        assert SENTINEL not in path.name
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path


@pytest.mark.usefixtures("hub_env")
def test_a_pull_request_targets_the_default_branch_and_returns_its_url(trained: Path) -> None:
    api = FakeApi()
    result = push_folder(trained, REPO, create_pr=True, api=api)

    assert api.names() == ["create_repo", "list_repo_files", "create_commit"]
    commit = api.call("create_commit")
    assert commit["create_pr"] is True and commit["revision"] is None
    assert result.pr_url == f"https://huggingface.co/{REPO}/discussions/7"
    assert result.revision == "refs/pr/7"


@pytest.mark.usefixtures("hub_env")
def test_a_pull_request_with_another_base_is_refused_before_any_call(trained: Path) -> None:
    api = FakeApi()
    with pytest.raises(UserInputError, match="default branch"):
        push_folder(trained, REPO, create_pr=True, revision="dev", api=api)
    assert api.calls == []


@pytest.mark.usefixtures("hub_env")
def test_pushing_to_an_open_pull_request_creates_no_branch(trained: Path) -> None:
    api = FakeApi()
    push_folder(trained, REPO, revision="refs/pr/7", api=api)
    assert api.names() == ["create_repo", "list_repo_files", "create_commit"]
    assert api.call("create_commit")["revision"] == "refs/pr/7"


@pytest.mark.usefixtures("hub_env")
def test_a_bare_name_is_committed_to_the_namespace_the_hub_resolves(trained: Path) -> None:
    api = FakeApi(namespace="alice")
    result = push_folder(trained, "sentiment-minilm", api=api)
    assert api.call("create_repo")["repo_id"] == "sentiment-minilm"
    assert api.call("create_commit")["repo_id"] == "alice/sentiment-minilm"
    assert result.repo_id == "alice/sentiment-minilm"


def test_without_metrics_the_commit_message_is_plain(trained: Path, hub_env: None) -> None:
    (trained / "metrics.json").unlink()
    api = FakeApi()
    push_folder(trained, REPO, api=api)
    assert api.call("create_commit")["commit_message"] == "Upload nlp-transfer classifier"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "Upload nlp-transfer classifier"),
        ("[1, 2]", "Upload nlp-transfer classifier"),
        ('{"strategy": "lora"}', "Upload nlp-transfer classifier"),  # not the record of a run
        (
            json.dumps({**METRICS, "eval": {"accuracy": float("nan")}}),
            "Upload nlp-transfer classifier (strategy lora)",
        ),
    ],
    ids=["not-json", "not-a-mapping", "no-task", "undefined-value"],
)
def test_the_default_commit_message_falls_back_without_a_readable_record(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "metrics.json").write_text(content, encoding="utf-8")
    assert push.default_commit_message(tmp_path) == message


@pytest.mark.usefixtures("no_token")
def test_a_dry_run_needs_no_token_and_makes_no_call(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push, "HfApi", mock.Mock(side_effect=AssertionError("no client in a dry run")))
    api = mock.Mock(spec=HfApi)

    result = push_folder(trained, REPO, revision="dev", dry_run=True, api=api)

    assert api.mock_calls == []
    plan = upload_plan(trained)
    assert result == PushResult(repo_id=REPO, revision="dev", files=plan.files, dry_run=True, refused=plan.refused)
    assert result.url is None and result.pr_url is None
    assert push_folder(trained, REPO, dry_run=True).files == result.files  # the default path builds no client


@pytest.mark.usefixtures("no_token")
def test_a_missing_token_says_how_to_provide_one(trained: Path) -> None:
    api = mock.Mock(spec=HfApi)
    with pytest.raises(UserInputError, match="HF_TOKEN") as raised:
        push_folder(trained, REPO, api=api)
    assert "hf auth login" in str(raised.value)
    assert api.mock_calls == []


def test_resolve_token_prefers_the_argument_then_hf_token_then_the_saved_login(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(push, "get_token", lambda: "hf_saved")
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert resolve_token("hf_given") == "hf_given"
    assert resolve_token() == "hf_env"
    monkeypatch.delenv("HF_TOKEN")
    assert resolve_token() == "hf_saved"
    assert resolve_token("  ") == "hf_saved"


@pytest.mark.parametrize(
    ("method", "error", "says"),
    [
        ("create_repo", OfflineModeIsEnabled("offline"), "HF_HUB_OFFLINE"),
        ("create_repo", ConnectionError("Connection refused"), "could not reach the Hugging Face Hub"),
        ("create_repo", _http_error(HfHubHTTPError, 401), "invalid or expired"),
        ("create_repo", _http_error(HfHubHTTPError, 403), "no write access to my-user"),
        ("create_branch", _http_error(RepositoryNotFoundError, 404), "found no repository"),
        ("create_commit", _http_error(HfHubHTTPError, 403), "no write access"),
        ("create_commit", _http_error(HfHubHTTPError, 500, "Internal Server Error"), "try again later"),
        ("create_commit", ValueError("Invalid metadata in README.md."), "Invalid metadata in README.md"),
    ],
    ids=["offline", "connection", "401", "403-create", "404-branch", "403-commit", "500", "refused"],
)
def test_hub_failures_name_the_repo_and_say_nothing_was_uploaded(
    trained: Path, hub_env: None, method: str, error: BaseException, says: str
) -> None:
    api = FakeApi(fail={method: error})
    with pytest.raises(UserInputError) as raised:
        push_folder(trained, REPO, revision="dev", api=api)
    message = str(raised.value)
    assert REPO in message and "Nothing was uploaded" in message and says in message
    assert SENTINEL not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_an_http_client_transport_error_is_a_connection_failure(trained: Path, hub_env: None) -> None:
    httpx2 = pytest.importorskip("httpx2")
    api = FakeApi(fail={"create_repo": httpx2.ConnectError("Name or service not known")})
    with pytest.raises(UserInputError, match="could not reach the Hugging Face Hub"):
        push_folder(trained, REPO, api=api)


def test_an_error_echoing_the_token_does_not_leak_it(trained: Path, hub_env: None) -> None:
    api = FakeApi(fail={"create_commit": _http_error(HfHubHTTPError, 400, f"bad header Bearer {SENTINEL}")})
    with pytest.raises(UserInputError) as raised:
        push_folder(trained, REPO, api=api)
    assert "HTTP 400" in str(raised.value) and SENTINEL not in str(raised.value)


def test_an_unexpected_error_keeps_its_traceback(trained: Path, hub_env: None) -> None:
    api = FakeApi(fail={"create_commit": RuntimeError("bug")})
    with pytest.raises(RuntimeError, match="bug"):
        push_folder(trained, REPO, api=api)


def test_the_real_client_offline_fails_cleanly(trained: Path, hub_env: None) -> None:
    """conftest sets HF_HUB_OFFLINE=1: the real HfApi refuses before any request, and that is explained."""
    with pytest.raises(UserInputError, match="HF_HUB_OFFLINE") as raised:
        push_folder(trained, REPO)
    assert "Nothing was uploaded" in str(raised.value) and SENTINEL not in str(raised.value)


@pytest.mark.parametrize("repo_id", ["a/b/c", "has space/name", "user/bad..name", "", "https://huggingface.co/u/m"])
def test_an_invalid_repo_id_is_refused_before_any_call(trained: Path, hub_env: None, repo_id: str) -> None:
    api = mock.Mock(spec=HfApi)
    with pytest.raises(UserInputError, match="Invalid Hub repository id"):
        push_folder(trained, repo_id, api=api)
    assert api.mock_calls == []


def test_a_bad_folder_is_refused_before_any_call(tmp_path: Path, hub_env: None) -> None:
    api = mock.Mock(spec=HfApi)
    staging = _write(tmp_path / ".demo.incomplete", CLASSIFIER_FILES)
    with pytest.raises(UserInputError, match="unfinished run"):
        push_folder(staging, REPO, api=api)
    with pytest.raises(UserInputError, match="config.json"):
        push_folder(_write(tmp_path / "demo", {"model.safetensors": b"w"}), REPO, api=api)
    assert api.mock_calls == []


def test_a_run_writing_beside_the_folder_is_warned_about(trained: Path, caplog: pytest.LogCaptureFixture) -> None:
    (trained.parent / ".demo.incomplete").mkdir()
    caplog.set_level(logging.WARNING, logger="nlp_transfer.hub.push")
    assert upload_plan(trained).files  # the finished folder still goes
    assert any(".demo.incomplete" in record.getMessage() for record in caplog.records)


# --------------------------------------------------------------------- train --push-to-hub, before training


def test_offline_mode_is_refused_before_any_token_or_request(
    tmp_path: Path, no_token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """conftest sets HF_HUB_OFFLINE=1: the real offline test sees it, with no token and no client needed."""
    monkeypatch.setattr(push, "HfApi", mock.Mock(side_effect=AssertionError("no client when offline")))
    with pytest.raises(UserInputError) as raised:
        check_hub_access(None, REPO, tmp_path / "out")
    message = str(raised.value)
    assert message.startswith("--push-to-hub needs the Hugging Face Hub, but HF_HUB_OFFLINE=1")
    assert "train without --push-to-hub" in message
    assert f"nlp-transfer push --model {tmp_path / 'out'} --repo-id {REPO}" in message


@pytest.mark.usefixtures("online", "hub_env")
def test_a_reachable_hub_and_a_write_token_pass_with_one_whoami_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeApi()
    monkeypatch.setattr(push, "HfApi", mock.Mock(return_value=fake))
    caplog.set_level(logging.DEBUG)
    check_hub_access(None, REPO, tmp_path / "out")
    assert fake.calls == [("whoami", {"token": SENTINEL})]
    assert "my-user" in caplog.text and SENTINEL not in caplog.text


@pytest.mark.usefixtures("online", "hub_env")
@pytest.mark.parametrize(
    ("error", "says"),
    [
        (_http_error(HfHubHTTPError, 401, f"Invalid user token {SENTINEL}."), "rejected the token (401)"),
        (ConnectionError(f"Connection refused for {SENTINEL}"), "could not reach the Hugging Face Hub"),
        (OfflineModeIsEnabled("offline"), "HF_HUB_OFFLINE is set"),
        (_http_error(HfHubHTTPError, 503, "Service Unavailable"), "try again later"),
    ],
    ids=["401", "network", "offline", "503"],
)
def test_a_failed_token_check_is_one_clear_error_without_the_token(
    tmp_path: Path, error: BaseException, says: str
) -> None:
    api = FakeApi(fail={"whoami": error})
    with pytest.raises(UserInputError) as raised:
        check_hub_access(None, REPO, tmp_path / "out", api=api)
    message = str(raised.value)
    assert message.startswith("--push-to-hub: checking the Hugging Face token before training failed:")
    assert says in message and f"nlp-transfer push --model {tmp_path / 'out'}" in message
    assert SENTINEL not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert api.names() == ["whoami"]


@pytest.mark.usefixtures("online", "hub_env")
def test_a_read_only_token_is_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="read-only, and pushing needs write access") as raised:
        check_hub_access(None, REPO, tmp_path / "out", api=FakeApi(role="read"))
    assert SENTINEL not in str(raised.value)


@pytest.mark.usefixtures("online", "hub_env")
def test_an_unexpected_error_of_the_token_check_keeps_its_traceback(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="bug"):
        check_hub_access(None, REPO, tmp_path / "out", api=FakeApi(fail={"whoami": RuntimeError("bug")}))


@pytest.mark.usefixtures("online", "no_token")
def test_the_token_check_without_a_token_says_how_to_provide_one(tmp_path: Path) -> None:
    api = FakeApi()
    with pytest.raises(UserInputError, match="HF_TOKEN"):
        check_hub_access(None, REPO, tmp_path / "out", api=api)
    assert api.calls == []


@pytest.mark.usefixtures("online", "hub_env")
def test_under_torchrun_only_rank_0_asks_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """whoami is rate-limited: one call per job, not one per process; every rank still needs a token."""
    api = FakeApi()
    monkeypatch.setenv("RANK", "3")
    check_hub_access(None, REPO, tmp_path / "out", api=api)
    assert api.calls == []
    monkeypatch.setenv("RANK", "0")
    check_hub_access(None, REPO, tmp_path / "out", api=api)
    assert api.names() == ["whoami"]


@pytest.mark.usefixtures("hub_env")
def test_a_plain_push_warns_of_an_earlier_graph_it_leaves_and_a_failed_listing_does_not_stop_it(
    trained: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeApi(repo_files=["README.md", "onnx/model.onnx"])
    with caplog.at_level(logging.WARNING, logger="nlp_transfer.hub.push"):
        push_folder(trained, REPO, api=api)
    assert f"{REPO} holds onnx/ from an earlier push, which this push leaves as it was" in caplog.text
    assert not any(not hasattr(op, "path_or_fileobj") for op in api.call("create_commit")["operations"])  # no delete
    caplog.clear()
    failing = FakeApi(fail={"list_repo_files": OSError("listing refused")})
    with caplog.at_level(logging.WARNING, logger="nlp_transfer.hub.push"):
        push_folder(trained, REPO, api=failing)
    assert failing.names() == ["create_repo", "list_repo_files", "create_commit"] and "onnx/" not in caplog.text
