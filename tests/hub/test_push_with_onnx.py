"""push --with-onnx: the verified graph goes up beside the weights in the same commit, or nothing goes up."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import refusal, run_cli, train_tiny_classifier
from hub_simulation import CommittingHub

pytest.importorskip("onnxruntime", reason="export needs the onnx extra: pip install 'nlp-transfer[onnx]'")

import onnx  # noqa: E402

from nlp_transfer.errors import UserInputError  # noqa: E402
from nlp_transfer.hub import push as push_module  # noqa: E402
from nlp_transfer.inference import export as export_module  # noqa: E402
from nlp_transfer.inference.export_push import push_with_onnx  # noqa: E402

FAST = ["--max-steps", "3", "--learning-rate", "3e-3", "--per-device-train-batch-size", "8", "--seed", "0"]
FAST += ["--disable-tqdm", "true", "--pooling", "mean"]


@pytest.fixture(scope="module")
def trained(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_classifier(tiny_checkpoint, tmp_path_factory.mktemp("push-onnx"), *FAST)


def _corrupt_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """The export writes a graph whose classifier layer is negated: its decisions disagree with PyTorch."""
    real_export = export_module.export_graph

    def corrupted(model, tokenizer, path):
        opset = real_export(model, tokenizer, path)
        graph = onnx.load(str(path))
        for tensor in graph.graph.initializer:
            if tensor.name.startswith("model.classifier."):
                array = onnx.numpy_helper.to_array(tensor)
                tensor.CopyFrom(onnx.numpy_helper.from_array(-array, tensor.name))
        onnx.save(graph, str(path))
        return opset

    monkeypatch.setattr(export_module, "export_graph", corrupted)


def test_the_graph_goes_up_under_onnx_in_the_same_commit_and_the_card_names_it(trained: Path) -> None:
    # An earlier push left an int8 graph and a note in onnx/: the new graph replaces that folder whole.
    earlier = ["README.md", "model.safetensors", "onnx/model.onnx", "onnx/model_int8.onnx", "onnx/notes.txt"]
    api = CommittingHub(namespace="me", repo_files=earlier)
    before = sorted(path.name for path in trained.iterdir())
    done = push_with_onnx(trained, "me/sentiment", latency=False, token="hf_fake", api=api)
    assert api.names() == ["create_repo", "list_repo_files", "create_commit"]  # one commit: weights and graph
    assert api.deleted == ["onnx/model_int8.onnx", "onnx/notes.txt"]
    assert api.call("list_repo_files")["revision"] == "main"
    assert {"model.safetensors", "config.json", "pooled_heads.py"} <= set(api.files)
    onnx_files = {path for path in api.files if path.startswith("onnx/")}
    assert onnx_files == {
        "onnx/model.onnx",
        "onnx/config.json",
        "onnx/export_report.json",
        "onnx/tokenizer.json",
        "onnx/tokenizer_config.json",
    }
    report = json.loads(api.files["onnx/export_report.json"])
    assert report["passed"] and report["forms"]["fp32"]["label_agreement"] == 1.0
    assert str(trained.parent) not in api.files["onnx/export_report.json"].decode()  # local paths stay local
    for path in (sys.prefix, str(Path(export_module.__file__).parents[2]), str(trained.parent)):
        assert path.encode() not in api.files["onnx/model.onnx"], path  # the exporter's stack traces are dropped
    card = api.files["README.md"].decode()
    agreement = f"{100 * report['forms']['fp32']['label_agreement']:.2f}%"
    assert f"| fp32 (`onnx/model.onnx`) | {agreement} | " in card
    assert 'snapshot_download("me/sentiment", allow_patterns=["onnx/*"])' in card
    assert card.index("## How to use") < card.index("## ONNX export")  # the trained card first, then the graph
    assert sorted(path.name for path in trained.iterdir()) == before  # the trained folder is left as it was
    assert done.export.deployed_file == "model.onnx"


def test_a_dry_run_lists_the_graph_and_uploads_nothing(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(push_module, "get_token", lambda: None)  # no token needed for a dry run
    code, out, err = run_cli(
        "push", "--model", str(trained), "--repo-id", "me/sentiment", "--with-onnx", "--quantize", "int8", "--dry-run"
    )
    assert code == 0, err
    assert "Dry run: would upload to me/sentiment (branch main):" in out
    for path in ("onnx/model.onnx", "onnx/model_int8.onnx", "onnx/export_report.json", "model.safetensors"):
        assert f"  {path} " in out
    assert "| int8 (model_int8.onnx) | " in out  # the verification, printed


def test_a_graph_that_fails_verification_stops_the_push(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _corrupt_the_graph(monkeypatch)
    api = CommittingHub(namespace="me")
    with pytest.raises(UserInputError, match=r"push --with-onnx refused: the ONNX export of .* failed its verif"):
        push_with_onnx(trained, "me/sentiment", latency=False, token="hf_fake", api=api)
    assert api.calls == []
    code, _, err = run_cli("push", "--model", str(trained), "--repo-id", "me/sentiment", "--with-onnx", "--dry-run")
    assert code == 2
    assert "push --with-onnx refused" in refusal(err) and "decisions agree with PyTorch, below" in refusal(err)


def test_no_token_is_said_before_the_export(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(push_module, "get_token", lambda: None)
    monkeypatch.setattr(export_module, "export_graph", lambda *args: pytest.fail("exported before the token check"))
    with pytest.raises(UserInputError, match="No Hugging Face token found"):
        push_with_onnx(trained, "me/sentiment")


def test_export_options_without_with_onnx_are_refused(trained: Path) -> None:
    code, _, err = run_cli("push", "--model", str(trained), "--repo-id", "me/x", "--quantize", "int8", "--dry-run")
    assert code == 2 and refusal(err) == "--quantize only apply with --with-onnx; add --with-onnx or drop them."
