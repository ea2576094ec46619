"""A folder with a pooled head carries the head's code: transformers alone loads it, with the package's
probabilities, where nlp-transfer is not installed (`trust_remote_code=True`)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from conftest import assert_loads_without_package, train_tiny_classifier

from nlp_transfer.modeling import pooled_heads
from nlp_transfer.modeling.layers import POOLED_MODEL_TYPE_PREFIX, SUPPORTED_MODEL_TYPES

FAST = ["--max-steps", "3", "--learning-rate", "3e-3", "--per-device-train-batch-size", "8", "--seed", "0"]
FAST += ["--disable-tqdm", "true", "--pooling", "mean"]
TEXTS = ["great product, works well", "awful, broke after a day", "a sentence the model never saw"]


def test_the_head_code_needs_only_torch_and_transformers():
    tree = ast.parse(Path(pooled_heads.__file__).read_text(encoding="utf-8"))
    roots = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert roots <= {"__future__", "inspect", "typing", "torch", "transformers"}


def test_it_covers_every_supported_architecture_under_the_packages_model_types():
    assert pooled_heads.POOLED_ARCHITECTURES == SUPPORTED_MODEL_TYPES
    assert pooled_heads.POOLED_MODEL_TYPE_PREFIX == POOLED_MODEL_TYPE_PREFIX


def test_a_pooled_folder_loads_with_transformers_alone_and_predicts_as_load_classifier(tiny_checkpoint, tmp_path):
    folder = train_tiny_classifier(tiny_checkpoint, tmp_path, *FAST)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "nlp-transfer-pooled-bert"
    assert config["auto_map"] == {
        "AutoConfig": "pooled_heads.PooledBertConfig",
        "AutoModelForSequenceClassification": "pooled_heads.PooledBertForSequenceClassification",
    }
    # One source: the folder's copy is the package's file, byte for byte.
    assert (folder / "pooled_heads.py").read_bytes() == Path(pooled_heads.__file__).read_bytes()
    assert_loads_without_package(folder, TEXTS, tmp_path)
    card = (folder / "README.md").read_text()
    assert "`pooled_heads.py`" in card and 'model="PATH/TO/MODEL", trust_remote_code=True)' in card


def test_push_uploads_the_head_code(tiny_checkpoint, tmp_path):
    from nlp_transfer import push_folder

    folder = train_tiny_classifier(tiny_checkpoint, tmp_path, *FAST)
    plan = push_folder(folder, "someone/pooled", dry_run=True)
    assert "pooled_heads.py" in {item.path for item in plan.files}
