"""Every Python snippet of a pushed card runs as written and gives load_classifier's probabilities.

The Hub is simulated where transformers, peft and huggingface_hub read it offline (`hub_simulation`): a Hugging
Face cache folder holding the tiny base checkpoint as the repository `tiny/bert`, and each pushed repository exactly
as its one commit would be (the files and bytes `push --with-onnx` hands to `create_commit`). The snippets are
taken from the uploaded README.md and executed unchanged in a fresh Python process: those that do not import
nlp_transfer run where it cannot be imported, as for a Hub user without the package. Each snippet's result on the
card's example text (a pipeline's scores, `predict`'s, the ONNX session's logits, the peft model's logits) must
equal the trained folder's `load_classifier` probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import train_tiny_classifier
from hub_simulation import CommittingHub, pushed_card, put_repository, run_snippets, simulated_hub, snippets

from nlp_transfer.inference.export import ExportOptions, export_model
from nlp_transfer.inference.export_push import push_with_onnx

pytest.importorskip("onnxruntime")

BASE_REPO = "tiny/bert"
FAST = ["--max-steps", "3", "--learning-rate", "3e-3", "--per-device-train-batch-size", "8", "--seed", "0"]
FAST += ["--disable-tqdm", "true", "--max-length", "16"]
KINDS = {
    "own-head": ["--pooling", "pooler"],
    "pooled": ["--pooling", "mean"],
    "lora-own-head": ["--pooling", "pooler", "--strategy", "lora", "--merge-lora", "true"],
    "lora-pooled": ["--pooling", "mean", "--strategy", "lora", "--merge-lora", "true"],
    "multi-label-pooled": ["--pooling", "mean", "--task", "multi_label"],
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[Path]:
    """A Hub cache holding the tiny checkpoint as `tiny/bert`, in use for this module (and its subprocesses)."""
    cache = tmp_path_factory.mktemp("hub-cache")
    put_repository(cache, BASE_REPO, {path.name: str(path) for path in tiny_checkpoint.iterdir() if path.is_file()})
    with simulated_hub(cache):
        yield cache


def pushed(hub: Path, root: Path, kind: str) -> tuple[Path, str]:
    """Train the kind from `tiny/bert`, push it with --with-onnx to a fake Hub, and put the commit in the cache."""
    folder = train_tiny_classifier(BASE_REPO, root, *FAST, *KINDS[kind])
    api = CommittingHub(namespace="me")
    repo_id = f"me/{kind}"
    push_with_onnx(folder, repo_id, latency=False, token="hf_fake", api=api)
    put_repository(hub, repo_id, api.files)
    return folder, repo_id


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_snippet_of_a_pushed_card_runs_as_written(hub: Path, kind: str, tmp_path: Path) -> None:
    folder, repo_id = pushed(hub, tmp_path, kind)
    card = pushed_card(hub, repo_id)
    codes = snippets(card)
    pooled = "pooled" in kind
    # What each kind's card offers: transformers alone (with the head's code for a pooled head), peft for an
    # adapter, nlp-transfer, and the pushed ONNX graph with nlp-transfer and with onnxruntime alone.
    assert any("trust_remote_code=True" in code and "nlp_transfer" not in code for code in codes) == pooled
    assert any("pipeline(" in code and "nlp_transfer" not in code for code in codes)
    assert any("peft import" in code for code in codes) == kind.startswith("lora")
    assert sum("onnx/*" in code for code in codes) == 2 and any("onnxruntime.Inference" in code for code in codes)
    assert len(codes) == 4 + pooled + kind.startswith("lora") - (kind.startswith("lora") and pooled)
    run_snippets(codes, folder, repo_id, tmp_path)


def test_an_exported_folders_card_snippets_run_as_written(hub: Path, tmp_path: Path) -> None:
    folder = train_tiny_classifier(BASE_REPO, tmp_path, *FAST, *KINDS["pooled"])
    exported = tmp_path / "onnx"
    export_model(ExportOptions(model=str(folder), output_dir=str(exported), latency=False))
    card = (exported / "README.md").read_text(encoding="utf-8")
    section = card[card.index("## ONNX export") :]
    codes = [code.replace('"path/to/this/folder"', json.dumps(str(exported))) for code in snippets(section)]
    assert len(codes) == 2
    run_snippets(codes, folder, str(exported), tmp_path)
