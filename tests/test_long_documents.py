"""--long-text through a whole run: texts cut as asked, the lengths reported, and a reloaded model cutting alike."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_csv

from nlp_transfer import RunConfig, fine_tune
from nlp_transfer.errors import UserInputError
from nlp_transfer.long_text import head_tail_split
from nlp_transfer.predict import load_classifier

# Words the bundled WordPiece vocabulary holds as one token each: a text of n of them is n + 2 tokens.
WORDS = "alpha bravo charlie delta echo golf hotel india lima mike oscar papa quebec romeo sierra tango".split()
MAX_LENGTH = 12  # 10 text tokens


def _text(start: int, n: int) -> str:
    return " ".join(WORDS[(start + i) % len(WORDS)] for i in range(n))


def _files(tmp_path: Path) -> dict[str, str]:
    """Train: 8 of 20 texts longer than MAX_LENGTH (30 words); validation: 2 of 4, the larger share."""
    train = [{"text": _text(i, 30 if i % 5 in (0, 1) else 6), "label": "ab"[i % 2]} for i in range(20)]
    validation = [{"text": _text(i, 30 if i < 2 else 6), "label": "ab"[i % 2]} for i in range(4)]
    return {
        "train_file": str(write_csv(tmp_path / "data" / "train.csv", train)),
        "validation_file": str(write_csv(tmp_path / "data" / "validation.csv", validation)),
    }


def _run(checkpoint: Path, tmp_path: Path, mode: str, **extra):
    options = {
        "model": str(checkpoint),
        **_files(tmp_path),
        "output_dir": str(tmp_path / mode),
        "long_text": mode,
        "max_length": MAX_LENGTH,
        "num_train_epochs": 1,
        "learning_rate": 1e-3,
        "disable_tqdm": True,
        **extra,
    }
    return fine_tune(RunConfig.from_dict(options))


def test_head_tail_is_reported_saved_and_read_back_by_prediction(
    tiny_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nlp_transfer")
    result = _run(tiny_checkpoint, tmp_path, "head-tail")
    report = result.record.long_text
    assert report["mode"] == "head-tail" and report["max_length"] == MAX_LENGTH
    train = report["splits"]["train"]
    assert (train["documents"], train["truncated"], train["truncated_share"]) == (20, 8, 0.4)
    assert train["tokens"]["max"] == 32 and train["tokens"]["min"] == 8
    assert report["splits"]["validation"]["truncated"] == 2
    # chunk, the other suggestion, is not a mode this version offers
    assert report["advice"] == (
        "In validation, 50.0% of 4 documents (2) are longer than 12 tokens and lose their middle to "
        "--long-text head-tail; try a larger --max-length, up to the model's limit."
    )
    assert report["advice"] in caplog.text
    assert "Token lengths of train (20 texts): median 8, p90 32, p99 32, max 32; 40.0% longer than 12" in caplog.text
    saved = json.loads((result.output_dir / "metrics.json").read_text(encoding="utf-8"))
    assert saved["long_text"] == report
    config = json.loads((result.output_dir / "config.json").read_text(encoding="utf-8"))
    assert config["nlp_transfer"]["long_text"] == "head-tail"

    # The reloaded classifier keeps the head and the tail of a long text, exactly as training did.
    classifier = load_classifier(result.output_dir)
    assert classifier.long_text == "head-tail"
    tokenizer = classifier.tokenizer
    long = _text(3, 30)
    ids = tokenizer(long)["input_ids"]
    head, tail = head_tail_split(MAX_LENGTH - 2)
    kept = [ids[0], *ids[1 : 1 + head], *ids[-1 - tail : -1], ids[-1]]
    assert len(kept) == MAX_LENGTH
    with torch.no_grad():
        expected = classifier.model(input_ids=torch.tensor([kept])).logits.numpy()
    np.testing.assert_allclose(classifier.logits([long]), expected, atol=1e-5)


def test_truncate_tail_reads_the_end_and_short_texts_give_no_advice(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = _run(tiny_checkpoint, tmp_path, "truncate-tail", max_length=40)
    assert result.record.long_text["splits"]["train"]["truncated"] == 0 and result.record.long_text["advice"] is None
    classifier = load_classifier(result.output_dir)
    assert classifier.long_text == "truncate-tail"
    classifier.max_length = MAX_LENGTH  # cut a long text to see which end is kept
    ids = classifier.tokenizer(_text(0, 30))["input_ids"]
    kept = [ids[0], *ids[-MAX_LENGTH + 1 :]]
    with torch.no_grad():
        expected = classifier.model(input_ids=torch.tensor([kept])).logits.numpy()
    np.testing.assert_allclose(classifier.logits([_text(0, 30)]), expected, atol=1e-5)


def test_an_older_folder_reads_as_truncate_head(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = _run(tiny_checkpoint, tmp_path, "truncate-head")
    config_path = result.output_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    del config["nlp_transfer"]["long_text"]
    config_path.write_text(json.dumps(config), encoding="utf-8")
    assert load_classifier(result.output_dir).long_text == "truncate-head"
    assert result.record.long_text["advice"] == (
        "In validation, 50.0% of 4 documents (2) are longer than 12 tokens and lose their end to "
        "--long-text truncate-head; try --long-text head-tail (keeps the start and the end)."
    )


def test_text_pairs_are_refused_with_other_modes(tmp_path: Path) -> None:
    rows = [{"premise": _text(i, 4), "hypothesis": _text(i + 1, 4), "label": "ab"[i % 2]} for i in range(8)]
    path = write_csv(tmp_path / "pairs.csv", rows)
    options = {"train_file": str(path), "text_pair_column": "hypothesis", "text_column": "premise"}
    with pytest.raises(UserInputError, match=r"--long-text head-tail reads single texts.*--text-pair-column hypot"):
        RunConfig.from_dict({**options, "long_text": "head-tail", "output_dir": str(tmp_path / "out")}).validate()
