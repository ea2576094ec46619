"""A huge text cell is tokenized from the part its --long-text mode reads, with exactly the tokens of the whole.

The budget is made small here (a few hundred characters) so that ordinary texts cross it and the tests stay fast.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import write_csv
from transformers import AutoTokenizer

from nlp_transfer import long_text
from nlp_transfer.config import DataArguments
from nlp_transfer.data import load_data, tokenize
from nlp_transfer.long_text import LongTextSettings, cut_texts, encode_documents, token_lengths

WORDS = "the parcel arrived late and the box was crushed, refund requested: order #48213 (twice!)".split()


def _text(words: int, seed: int = 0) -> str:
    return " ".join(WORDS[(i * 7 + seed) % len(WORDS)] + ("" if i % 11 else "\n  ") for i in range(words))


@pytest.fixture()
def tokenizer(bundled_tokenizer_path: Path):
    return AutoTokenizer.from_pretrained(bundled_tokenizer_path)


@pytest.fixture()
def small_budget(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(long_text, "character_budget", lambda max_length: 300)
    return 300


@pytest.mark.parametrize("mode", ["truncate-head", "truncate-tail", "head-tail"])
def test_a_cut_text_keeps_exactly_the_tokens_of_the_whole(tokenizer, small_budget: int, mode: str) -> None:
    texts = [_text(3000), _text(5, seed=3), "  " * 5000 + _text(2000, seed=1)]
    cut = cut_texts(tokenizer, texts, mode, 64)
    assert cut[1] == texts[1]  # under the budget: untouched
    assert len(cut[0]) < len(texts[0]) / 4  # the huge one was cut...
    settings = LongTextSettings(mode, 64)
    with pytest.MonkeyPatch.context() as patch:  # the whole texts, tokenized without any cut
        patch.setattr(long_text, "cut_texts", lambda tokenizer, texts, mode, limit: list(texts))
        expected = encode_documents(tokenizer, texts, settings)
    assert encode_documents(tokenizer, texts, settings) == expected  # ...and reads as the whole text


def test_pairs_cut_in_truncate_head_keep_the_tokens_of_the_whole(tokenizer, small_budget: int) -> None:
    first, second = [_text(3000)], [_text(2500, seed=5)]
    cut = tokenizer(
        cut_texts(tokenizer, first, "truncate-head", 64),
        cut_texts(tokenizer, second, "truncate-head", 64),
        truncation=True,
        max_length=64,
    )
    assert cut["input_ids"] == tokenizer(first, second, truncation=True, max_length=64)["input_ids"]


def test_training_logs_how_many_texts_were_cut(
    tokenizer, small_budget: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [{"text": _text(3000 if i < 3 else 8, seed=i), "label": "a" if i % 2 else "b"} for i in range(20)]
    train = write_csv(tmp_path / "train.csv", rows)
    data = load_data(DataArguments(train_file=str(train)), seed=0)
    with caplog.at_level(logging.INFO, logger="nlp_transfer"):
        encoded = tokenize(data, tokenizer, 64)
    logged = [r.getMessage() for r in caplog.records if "characters: tokenized from the part" in r.getMessage()]
    assert sum(int(message.split()[0]) for message in logged) == 3
    assert max(len(ids) for ids in encoded["train"]["input_ids"]) == 64


def test_the_length_report_extrapolates_a_text_over_its_sample(tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(long_text, "LENGTH_SAMPLE_TOKENS", 16)  # a budget of 4096 characters
    short, long = _text(50), _text(4000)
    exact = len(tokenizer(long)["input_ids"])
    measured = token_lengths(tokenizer, [short, long])
    assert measured[0] == len(tokenizer(short)["input_ids"])
    assert abs(measured[1] - exact) / exact < 0.05


@pytest.mark.parametrize("stride", [0, 32])
def test_chunk_windows_of_a_huge_text_streamed_equal_the_tokenizers_own(
    tokenizer, small_budget: int, stride: int
) -> None:
    texts = ["short one", _text(3000), "another short", _text(400, seed=2), _text(2500, seed=4)]
    settings = LongTextSettings("chunk", 64, stride)
    streamed = long_text._chunks(tokenizer, texts, settings)
    assert streamed == long_text._overflow_windows(tokenizer, texts, settings)
    assert sorted(set(streamed["document"])) == [0, 1, 2, 3, 4]
