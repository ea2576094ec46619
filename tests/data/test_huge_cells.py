"""A huge text cell is tokenized from the part its --long-text mode reads, with exactly the tokens of the whole.

The budget is mostly made small here (a few hundred or thousand characters) so that ordinary texts cross it and
the tests stay fast; one test keeps the real budget on a text of several thousand words.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import write_csv
from datasets import Dataset
from transformers import AutoTokenizer

from nlp_transfer.config.data import DataArguments
from nlp_transfer.config.long_text import LongTextSettings
from nlp_transfer.data import long_text
from nlp_transfer.data.long_text import (
    character_budget,
    content_tokens,
    count_long,
    cut_pairs,
    cut_texts,
    encode_documents,
    head_tail_split,
    length_report,
    token_lengths,
)
from nlp_transfer.data.prepare import load_data
from nlp_transfer.data.tokenize import tokenize

WORDS = (
    "the parcel arrived late and the box was crushed, refund requested: order #48213 (twice!) unbelievably "
    "internationalization naïve café 2026-12-05 3.14159 e-mail https://example.com/a?b=c 😀 ..."
).split()


def _text(words: int, seed: int = 0) -> str:
    """`words` words drawn at random (of several pieces each, some), a line break and indent every 11."""
    draw = random.Random(seed)
    return " ".join(draw.choice(WORDS) + ("" if i % 11 else "\n  ") for i in range(1, words + 1))


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


@pytest.mark.parametrize(
    "words",
    [
        (3000, 2500),  # both cut: the first, longer, gets the odd token of the 61 (64 - 3 special)
        (2500, 3000),  # the second longer
        (3000, 3000),  # the same text: a tie gives the odd token to the second
        (3000, 150),  # one cut, its partner under the budget yet longer than half the room
        (150, 3000),
    ],
)
def test_pairs_cut_in_truncate_head_keep_the_tokens_of_the_whole(
    tokenizer, small_budget: int, words: tuple[int, int]
) -> None:
    first, second = [_text(words[0])], [_text(words[1], seed=0 if words[0] == words[1] else 5)]
    cut_first, cut_second = cut_pairs(tokenizer, first, second, 64)
    assert len(cut_first[0] + cut_second[0]) < len(first[0] + second[0]) / 2  # the huge ones were cut...
    cut = tokenizer(cut_first, cut_second, truncation=True, max_length=64)["input_ids"]
    assert cut == tokenizer(first, second, truncation=True, max_length=64)["input_ids"]  # ...to the same tokens
    assert encode_documents(tokenizer, first, LongTextSettings(max_length=64), second)["input_ids"] == cut


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
    monkeypatch.setattr(long_text, "LENGTH_SAMPLE_TOKENS", 16)  # the least budget: 16,384 characters
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


# ---------------------------------------------------------------------------------- budgets, logs, reports


def _uncut(tokenizer, texts: list[str], settings: LongTextSettings) -> dict[str, list]:
    """encode_documents on the whole texts: what every cut must reproduce."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(long_text, "cut_texts", lambda tokenizer, texts, mode, limit: list(texts))
        return encode_documents(tokenizer, texts, settings)


@pytest.mark.parametrize("max_length", [128, 512])
@pytest.mark.parametrize("mode", ["truncate-head", "truncate-tail", "head-tail"])
def test_the_real_budget_cuts_a_long_document_and_keeps_its_tokens(tokenizer, mode: str, max_length: int) -> None:
    texts = [_text(7000, seed=2), _text(300)]  # 7,000 words: about 45,000 characters
    assert len(texts[0]) > 2 * character_budget(max_length) > len(texts[1])  # the first is cut, the second not
    assert len(cut_texts(tokenizer, texts, mode, max_length)[0]) < len(texts[0])
    settings = LongTextSettings(mode, max_length)
    assert encode_documents(tokenizer, texts, settings) == _uncut(tokenizer, texts, settings)


@pytest.mark.parametrize("separator", [" ", "\n", " \n\t  "])
@pytest.mark.parametrize("mode", ["truncate-head", "truncate-tail", "head-tail"])
def test_a_text_far_over_the_budget_reads_as_its_whole_heads_and_tails_tokens(
    tokenizer, monkeypatch: pytest.MonkeyPatch, mode: str, separator: str
) -> None:
    monkeypatch.setattr(long_text, "character_budget", lambda max_length: 2000)
    text = separator.join(_text(60_000, seed=1).split())  # about 400 KB
    assert len(cut_texts(tokenizer, [text], mode, 128)[0]) < 10_000  # tokenized from a few thousand characters
    whole = tokenizer(text, verbose=False)["input_ids"]  # the untruncated tokens, [CLS] ... [SEP]
    inner = whole[1:-1]
    assert content_tokens(tokenizer, 128) == 126
    head, tail = {"truncate-head": (126, 0), "truncate-tail": (0, 126), "head-tail": head_tail_split(126)}[mode]
    expected = whole[:1] + inner[:head] + inner[len(inner) - tail :] + whole[-1:]
    assert encode_documents(tokenizer, [text], LongTextSettings(mode, 128))["input_ids"] == [expected]


@pytest.mark.parametrize("separator", ["\n", " \n\t  "])
def test_chunk_windows_of_a_huge_text_without_spaces_equal_the_tokenizers_own(
    tokenizer, small_budget: int, separator: str
) -> None:
    """Words split by newlines only: segments end at a newline, not mid-word (where a word's pieces change)."""
    texts = [separator.join(_text(2000, seed=3).split()), "a short one"]
    settings = LongTextSettings("chunk", 64, 8)
    assert long_text._chunks(tokenizer, texts, settings) == long_text._overflow_windows(tokenizer, texts, settings)


def test_chunk_windows_of_normal_texts_are_the_tokenizers_own(tokenizer) -> None:
    texts = [_text(3500), _text(30, seed=1), "short"]  # all under the real budget: read whole, as before
    assert max(len(text) for text in texts) <= 2 * character_budget(64)
    settings = LongTextSettings("chunk", 64, 16)
    assert encode_documents(tokenizer, texts, settings) == long_text._overflow_windows(tokenizer, texts, settings)


def _cut_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if " characters: tokenized " in r.getMessage()]


def test_the_cut_texts_are_logged_once_a_split_pairs_counted(
    tokenizer, small_budget: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [
        {"text": _text(300 if i in (1, 4) else 5, seed=i), "text2": _text(300 if i in (4, 7) else 5), "label": i % 2}
        for i in range(30)
    ]
    train = write_csv(tmp_path / "train.csv", rows)
    validation = write_csv(tmp_path / "validation.csv", rows[:6])
    arguments = DataArguments(train_file=str(train), validation_file=str(validation), text_pair_column="text2")
    data = load_data(arguments, seed=0)
    with caplog.at_level(logging.INFO, logger="nlp_transfer"):
        tokenize(data, tokenizer, 64)
    assert sorted(message.split(" are over")[0] for message in _cut_messages(caplog)) == [
        "3 texts of validation",  # rows 1 and 4, and the pair of row 4: texts, not rows
        "4 texts of train",  # and 7's pair
    ]


def test_chunk_mode_logs_the_texts_read_piece_by_piece(
    tokenizer, small_budget: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [{"text": _text(300 if i < 2 else 5, seed=i), "label": "ab"[i % 2]} for i in range(12)]
    data = load_data(DataArguments(train_file=str(write_csv(tmp_path / "train.csv", rows))), seed=0)
    with caplog.at_level(logging.INFO, logger="nlp_transfer"):
        tokenize(data, tokenizer, 64, "chunk")
    messages = _cut_messages(caplog)
    assert sum(int(message.split()[0]) for message in messages) == 2
    assert all("piece by piece into their windows" in message for message in messages)


def test_count_long_reads_an_arrow_column_as_the_python_texts(small_budget: int) -> None:
    texts = [_text(300, seed=i) if i % 3 == 0 else "short" for i in range(10)]
    split = Dataset.from_dict({"text": texts, "number": list(range(10))}).select([9, 3, 1, 0])  # indices mapping
    column = split.with_format("arrow")["text"]
    assert isinstance(column, pa.ChunkedArray)
    assert count_long(column, 64) == count_long(list(split["text"]), 64) == 3  # rows 9, 3 and 0, over 600 characters
    assert count_long(split.with_format("arrow")["number"], 64) == 0  # numbers read as texts: short


def test_a_text_mostly_whitespace_is_not_reported_short(tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its first characters hold no tokens: the sample grows, rather than scaling 2 tokens to a 'short' text."""
    monkeypatch.setattr(long_text, "LENGTH_SAMPLE_TOKENS", 16)  # a sample budget of 16,384 characters
    padded = " " * 40_000 + _text(500)
    exact = len(tokenizer(padded)["input_ids"])
    lengths = token_lengths(tokenizer, [padded, _text(5)])
    assert lengths[0] == exact and lengths.estimated == 0  # grown to the whole text: exact
    assert length_report(lengths, 128)["truncated"] == 1


def test_the_report_says_how_many_lengths_are_estimated(tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(long_text, "LENGTH_SAMPLE_TOKENS", 16)
    lengths = token_lengths(tokenizer, [_text(10), _text(5000), _text(4000, seed=1)])
    assert lengths.estimated == 2
    report = length_report(lengths, 64)
    assert report["estimated"] == 2 and report["truncated"] == 2
    assert "estimated" not in length_report(token_lengths(tokenizer, [_text(10)]), 64)  # the usual report, as before
