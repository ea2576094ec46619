"""Shared fixtures: offline mode, a tiny random BERT checkpoint, CSV writers, the shared real data."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

# Offline before anything imports huggingface_hub: no test may reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The CLI caches descriptions of its parsers (nlp_transfer.cli.parser_cache): in a folder of the test session's own.
os.environ["NLP_TRANSFER_CACHE"] = tempfile.mkdtemp(prefix="nlp-transfer-test-cache-")

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`nlp-transfer ARGV` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from nlp_transfer.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def refusal(err: str) -> str:
    """The one error paragraph on stderr after 'error: ', joined into one line (the CLI wraps it at 100 characters)."""
    assert "Traceback" not in err
    assert err.count("error: ") == 1, err
    return " ".join(err[err.index("error: ") + len("error: ") :].split())


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    """Write `rows` as a CSV with a header (Python's csv module quoting)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fieldnames = fieldnames or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return path


POSITIVE = ["great product, works well", "love it, excellent quality", "very happy with this", "superb and fast"]
NEGATIVE = ["terrible, broke in a day", "awful quality, very sad", "bad purchase, do not buy", "slow and useless"]


def sentiment_rows(n_per_class: int = 12) -> list[dict]:
    """A tiny two-class data set with word labels, alternating classes."""
    rows = []
    for i in range(n_per_class):
        rows.append({"text": f"{POSITIVE[i % len(POSITIVE)]} {i}", "label": "positive"})
        rows.append({"text": f"{NEGATIVE[i % len(NEGATIVE)]} {i}", "label": "negative"})
    return rows


@pytest.fixture()
def sentiment_files(tmp_path: Path) -> dict[str, Path]:
    """train.csv (24 rows) and validation.csv (8 rows) of the tiny sentiment set."""
    return {
        "train": write_csv(tmp_path / "data" / "train.csv", sentiment_rows(12)),
        "validation": write_csv(tmp_path / "data" / "validation.csv", sentiment_rows(4)),
    }


@pytest.fixture(scope="session")
def bundled_tokenizer_path() -> Path:
    from nlp_transfer.modeling.checkpoints import bundled_model_path

    return bundled_model_path()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, bundled_tokenizer_path: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with the bundled WordPiece tokenizer, saved as a folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_path)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture()
def shared_data() -> Path:
    """../shared/data with the real public data sets; tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only present beside the project's own checkout)")
    return SHARED_DATA
