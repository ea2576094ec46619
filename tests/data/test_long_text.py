"""Long texts: truncation modes, chunk windows, length reports and chunk-to-document aggregation, checked
against token ids and numbers worked out by hand (the bundled uncased WordPiece tokenizer, fast)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nlp_transfer.config.long_text import LongTextSettings
from nlp_transfer.data.long_text import (
    RECOMMENDED_MODES,
    content_tokens,
    encode_documents,
    head_tail_split,
    length_report,
    token_lengths,
    truncation_advice,
)
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.documents import aggregate_labels, aggregate_logits
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL

MAX_LENGTH = 12  # 10 text tokens + [CLS] + [SEP]
WINDOW = 10


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from nlp_transfer.modeling.checkpoints import bundled_model_path

    return AutoTokenizer.from_pretrained(bundled_model_path())


@pytest.fixture(scope="module")
def words(tokenizer) -> tuple[list[str], list[int]]:
    """80 distinct whole words of the vocabulary, each one token: (words, their ids)."""
    ids = [i for i in range(3000, 3200) if tokenizer.convert_ids_to_tokens(i).isalpha()][:80]
    found = tokenizer.convert_ids_to_tokens(ids)
    assert len(set(ids)) == 80
    assert tokenizer(" ".join(found), add_special_tokens=False)["input_ids"] == ids  # one token per word
    return found, ids


def text_of(words: tuple[list[str], list[int]], n: int) -> tuple[str, list[int]]:
    """A text of the first n words and its token ids (without special tokens)."""
    return " ".join(words[0][:n]), words[1][:n]


def settings(mode: str, stride: int = 0) -> LongTextSettings:
    return LongTextSettings(mode=mode, max_length=MAX_LENGTH, stride=stride)


def with_specials(tokenizer, content: list[int]) -> list[int]:
    return [tokenizer.cls_token_id, *content, tokenizer.sep_token_id]


# ---------------------------------------------------------------------------------- settings


def test_bundled_tokenizer_is_fast_with_two_special_tokens(tokenizer) -> None:
    assert tokenizer.is_fast
    assert content_tokens(tokenizer, MAX_LENGTH) == WINDOW
    assert content_tokens(tokenizer, 512) == 510


@pytest.mark.parametrize(
    ("values", "content", "message"),
    [
        ({"mode": "middle"}, None, "--long-text 'middle' is not a long-text mode; use one of truncate-head"),
        ({"mode": "chunk", "aggregate": "median"}, None, "--chunk-aggregate 'median' is not an aggregation"),
        ({"max_length": 0}, None, "--max-length must be a positive number of tokens, not 0"),
        ({"mode": "chunk", "stride": -1}, None, "--chunk-stride -1 is negative"),
        ({"mode": "chunk", "stride": 10}, 10, "--chunk-stride 10 must be smaller than the 10 text tokens"),
        ({"mode": "chunk", "max_length": 2}, 0, "--max-length 2 leaves no room for text beside the tokenizer's 2"),
        ({"mode": "head-tail", "stride": 4}, None, "--chunk-stride 4 only applies to --long-text chunk"),
        ({"aggregate": "max"}, None, "--chunk-aggregate max only applies to --long-text chunk, not --long-text trunc"),
    ],
)
def test_check_refuses_bad_options(values: dict, content: int | None, message: str) -> None:
    with pytest.raises(UserInputError, match=message.replace("(", r"\(")):
        LongTextSettings(**values).check(content)


def test_check_accepts_the_largest_stride() -> None:
    LongTextSettings(mode="chunk", max_length=12, stride=9, aggregate="attention").check(10)
    LongTextSettings().check(510)


def test_encode_checks_the_stride_against_the_tokenizer(tokenizer) -> None:
    with pytest.raises(UserInputError, match="use at most 9"):
        encode_documents(tokenizer, ["a"], settings("chunk", stride=10))


def test_settings_round_trip_and_defaults() -> None:
    chosen = LongTextSettings(mode="chunk", max_length=256, stride=64, aggregate="attention")
    assert chosen.to_dict() == {"mode": "chunk", "max_length": 256, "stride": 64, "aggregate": "attention"}
    assert LongTextSettings.from_dict(chosen.to_dict()) == chosen
    assert LongTextSettings.from_dict(None) == LongTextSettings()  # a folder saved before long-text modes
    assert LongTextSettings.from_dict({"mode": "head-tail", "future": 1}) == LongTextSettings(mode="head-tail")


# ---------------------------------------------------------------------------------- encoding


def test_truncate_head_is_the_plain_tokenizer_call(tokenizer, words) -> None:
    texts = [text_of(words, 30)[0], "A short one.", text_of(words, 10)[0]]
    pairs = ["first", text_of(words, 20)[0], "third pair"]
    for second in (None, pairs):
        encoded = encode_documents(tokenizer, texts, settings("truncate-head"), second)
        expected = dict(tokenizer(texts, second, truncation=True, max_length=MAX_LENGTH))
        assert encoded == {**expected, "document": [0, 1, 2]}
        assert set(encoded) == {"input_ids", "token_type_ids", "attention_mask", "document"}
    single = encode_documents(tokenizer, texts, settings("truncate-head"))
    assert single["input_ids"][0] == with_specials(tokenizer, words[1][:WINDOW])  # the first 10 words


def test_truncate_tail_keeps_the_last_tokens(tokenizer, words) -> None:
    long_text, long_ids = text_of(words, 30)
    short_text, short_ids = text_of(words, 4)
    encoded = encode_documents(tokenizer, [long_text, short_text], settings("truncate-tail"))
    assert encoded["input_ids"] == [with_specials(tokenizer, long_ids[-WINDOW:]), with_specials(tokenizer, short_ids)]
    assert encoded["attention_mask"] == [[1] * MAX_LENGTH, [1] * 6]
    assert encoded["token_type_ids"] == [[0] * MAX_LENGTH, [0] * 6]
    assert encoded["document"] == [0, 1]
    assert tokenizer.truncation_side == "right"  # the caller's tokenizer is left as it was
    assert tokenizer([long_text], truncation=True, max_length=MAX_LENGTH)["input_ids"][0][1] == long_ids[0]


def test_head_tail_split_follows_sun_et_al() -> None:
    assert head_tail_split(510) == (128, 382)  # BERT at 512 tokens: the paper's best split
    assert head_tail_split(126) == (32, 94)  # 126 * 128 / 510 = 31.6
    assert head_tail_split(10) == (3, 7)  # 2.51 rounds up
    assert head_tail_split(2) == (1, 1)  # 0.502
    assert head_tail_split(1) == (0, 1)


def test_head_tail_keeps_the_head_and_the_tail(tokenizer, words) -> None:
    long_text, long_ids = text_of(words, 30)
    fits_text, fits_ids = text_of(words, WINDOW)
    over_text, over_ids = text_of(words, WINDOW + 1)
    encoded = encode_documents(tokenizer, [long_text, fits_text, over_text], settings("head-tail"))
    assert (
        encoded["input_ids"]
        == [
            with_specials(tokenizer, long_ids[:3] + long_ids[-7:]),
            with_specials(tokenizer, fits_ids),  # fits: unchanged
            with_specials(tokenizer, over_ids[:3] + over_ids[-7:]),  # one token over: the 4th word goes
        ]
    )
    assert encoded["attention_mask"] == [[1] * MAX_LENGTH] * 3
    assert encoded["token_type_ids"] == [[0] * MAX_LENGTH] * 3
    assert encoded["document"] == [0, 1, 2]


def test_head_tail_equals_encoding_the_kept_words(tokenizer, words) -> None:
    long_text, _ = text_of(words, 40)
    kept = " ".join(words[0][:3] + words[0][33:40])
    encoded = encode_documents(tokenizer, [long_text], settings("head-tail"))
    assert encoded == {**dict(tokenizer([kept])), "document": [0]}


@pytest.mark.parametrize(("n", "stride", "chunks"), [(50, 0, 5), (50, 1, 6), (50, 3, 7), (50, 9, 41), (10, 3, 1)])
def test_chunk_windows_overlap_by_the_stride(tokenizer, words, n: int, stride: int, chunks: int) -> None:
    """HF's stride is the number of text tokens consecutive windows share: window k starts at k * (10 - stride).

    n=50, stride 3: step 7, windows start at 0, 7, ..., 42 (the last holds 8 tokens): 1 + ceil(40 / 7) = 7.
    """
    text, ids = text_of(words, n)
    if n > WINDOW:
        assert chunks == 1 + math.ceil((n - WINDOW) / (WINDOW - stride))
    encoded = encode_documents(tokenizer, [text], settings("chunk", stride))
    rows = encoded["input_ids"]
    assert len(rows) == chunks
    assert encoded["document"] == [0] * chunks
    step = WINDOW - stride
    for k, row in enumerate(rows):
        assert row[0] == tokenizer.cls_token_id and row[-1] == tokenizer.sep_token_id
        assert row[1:-1] == ids[k * step : k * step + WINDOW]
        assert encoded["attention_mask"][k] == [1] * len(row)
    for before, after in zip(rows, rows[1:]):
        assert before[1:-1][WINDOW - stride :] == after[1:-1][:stride]  # the overlap is exactly `stride` tokens
    assert rows[-1][-2] == ids[-1]  # the last window reaches the end


def test_chunk_maps_rows_to_their_documents(tokenizer, words) -> None:
    texts = [text_of(words, 25)[0], "Short.", text_of(words, 10)[0], text_of(words, 11)[0]]
    encoded = encode_documents(tokenizer, texts, settings("chunk", 5))
    # 25 tokens, step 5: windows at 0, 5, 10, 15 (15..25 reaches the end) -> 4; 10 fit -> 1; 11 -> 2
    assert encoded["document"] == [0, 0, 0, 0, 1, 2, 3, 3]
    assert set(encoded) == {"input_ids", "token_type_ids", "attention_mask", "document"}
    assert encoded["input_ids"][4] == tokenizer("Short.")["input_ids"]
    assert len(encoded["input_ids"]) == len(encoded["token_type_ids"]) == 8


@pytest.mark.parametrize("mode", ["truncate-tail", "head-tail", "chunk"])
def test_pairs_only_with_truncate_head(tokenizer, mode: str) -> None:
    with pytest.raises(UserInputError, match=f"--long-text {mode} reads single texts.*use --long-text truncate-head"):
        encode_documents(tokenizer, ["a"], settings(mode), pairs=["b"])


def test_chunk_needs_a_fast_tokenizer() -> None:
    class SlowTokenizer:
        is_fast = False

        def num_special_tokens_to_add(self, pair: bool = False) -> int:
            return 2

    with pytest.raises(UserInputError, match="--long-text chunk needs a fast \\(Rust\\) tokenizer.*SlowTokenizer"):
        encode_documents(SlowTokenizer(), ["a"], settings("chunk"))


def test_no_texts_no_rows(tokenizer) -> None:
    encoded = encode_documents(tokenizer, [], settings("chunk", 2))
    assert encoded == {"input_ids": [], "token_type_ids": [], "attention_mask": [], "document": []}
    assert token_lengths(tokenizer, []) == []


def test_token_lengths_are_untruncated(tokenizer, words) -> None:
    texts = [text_of(words, 80)[0], text_of(words, 3)[0]]
    assert token_lengths(tokenizer, texts) == [82, 5]
    assert token_lengths(tokenizer, texts, [text_of(words, 4)[0], "paris"]) == [87, 7]  # [CLS] a [SEP] b [SEP]
    # Measured a text at a time (the batches a split of long documents is read in), pairs kept with their texts.
    assert token_lengths(tokenizer, texts, [text_of(words, 4)[0], "paris"], batch=1) == [87, 7]
    assert token_lengths(tokenizer, texts * 3, batch=2) == [82, 5] * 3


# ---------------------------------------------------------------------------------- lengths and advice


def test_length_report_by_hand() -> None:
    report = length_report([40, 10, 100, 30, 20], max_length=32)
    assert report == {
        "documents": 5,
        "max_length": 32,
        "truncated": 2,  # 40 and 100
        "truncated_share": 0.4,
        # sorted 10 20 30 40 100; p90 at position 3.6: 40 + 0.6 * 60; p99 at 3.96: 40 + 0.96 * 60
        "tokens": {"min": 10, "p50": 30.0, "p90": 76.0, "p99": 97.6, "max": 100, "mean": 40.0},
    }
    assert length_report([33, 1, 1], 32)["truncated_share"] == 0.3333
    assert length_report([32], 32)["truncated"] == 0  # exactly max_length fits


def test_length_report_matches_numpy() -> None:
    lengths = np.random.default_rng(0).integers(5, 900, size=257).tolist()
    tokens = length_report(lengths, 512)["tokens"]
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        assert tokens[name] == round(float(np.percentile(lengths, q)), 1)
    assert tokens["mean"] == round(float(np.mean(lengths)), 1)
    assert length_report(lengths, 512)["truncated"] == sum(n > 512 for n in lengths)


def test_truncation_advice() -> None:
    report = length_report([40, 10, 100, 30, 20], max_length=32)
    advice = truncation_advice(report, "truncate-head")
    assert advice == (
        "40.0% of 5 documents (2) are longer than 32 tokens and lose their end to --long-text truncate-head; try "
        "--long-text chunk (reads all of each document in windows) or --long-text truncate-tail (keeps the end)."
    )
    assert RECOMMENDED_MODES == ("chunk", "truncate-tail")  # the IMDB measurement's order (BENCHMARKS.md)
    assert "lose their middle" in truncation_advice(report, "head-tail")
    assert "try --long-text chunk (reads" in truncation_advice(report, "head-tail")
    assert truncation_advice(report, "truncate-tail").endswith(
        "try --long-text chunk (reads all of each document in windows)."
    )
    assert truncation_advice(report, "chunk") is None
    assert truncation_advice(length_report([33] + [1] * 9, 32), "truncate-head") is None  # exactly 10%: fine
    assert truncation_advice(length_report([33, 33] + [1] * 17, 32), "truncate-tail").startswith("10.5% of 19")


# ---------------------------------------------------------------------------------- aggregation

# Rows of three documents, not contiguous: 7 at rows 0 and 2, 5 at rows 1 and 3, 9 at row 4.
LOGITS = np.array([[1.0, 3.0], [0.0, 0.0], [3.0, -1.0], [2.0, 4.0], [5.0, 6.0]])
DOCUMENTS = np.array([7, 5, 7, 5, 9])


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("mean", [[1.0, 2.0], [2.0, 1.0], [5.0, 6.0]]),
        ("max", [[2.0, 4.0], [3.0, 3.0], [5.0, 6.0]]),
        ("first", [[0.0, 0.0], [1.0, 3.0], [5.0, 6.0]]),
        ("attention", None),  # regression: equal weights, the mean
    ],
)
def test_simple_aggregations(how: str, expected: list | None) -> None:
    ids, logits = aggregate_logits(LOGITS, DOCUMENTS, how, REGRESSION)
    assert ids.tolist() == [5, 7, 9]  # ascending, whatever the rows' order
    assert np.allclose(logits, expected or [[1.0, 2.0], [2.0, 1.0], [5.0, 6.0]])


def test_attention_single_label_weighs_by_top_probability() -> None:
    _, logits = aggregate_logits(LOGITS, DOCUMENTS, "attention", SINGLE_LABEL)
    # softmax of log top-probabilities = top probabilities normalised; two classes: top p = sigmoid(|z1 - z0|)
    p0, p2 = sigmoid(2), sigmoid(4)  # rows 0 and 2 of document 7
    w0 = p0 / (p0 + p2)
    assert w0 == pytest.approx(0.47283, abs=1e-5)
    assert np.allclose(logits[1], [w0 * 1 + (1 - w0) * 3, w0 * 3 + (1 - w0) * -1])
    p1, p3 = 0.5, sigmoid(2)  # document 5: [0, 0] is a coin toss
    w1 = p1 / (p1 + p3)
    assert np.allclose(logits[0], [(1 - w1) * 2, (1 - w1) * 4])
    assert np.allclose(logits[2], [5.0, 6.0])  # a single chunk keeps its logits


def test_attention_multi_label_weighs_by_geometric_confidence() -> None:
    _, logits = aggregate_logits(LOGITS, DOCUMENTS, "attention", MULTI_LABEL)
    # exp(mean over labels of log max(p, 1 - p)) = geometric mean of sigmoid(|z|)
    c0, c2 = math.sqrt(sigmoid(1) * sigmoid(3)), math.sqrt(sigmoid(3) * sigmoid(1))
    assert c0 == pytest.approx(c2)  # equal confidence: the plain mean
    assert np.allclose(logits[1], [2.0, 1.0])
    c1, c3 = math.sqrt(0.5 * 0.5), math.sqrt(sigmoid(2) * sigmoid(4))
    w3 = c3 / (c1 + c3)
    assert w3 == pytest.approx(0.65036, abs=1e-5)
    assert np.allclose(logits[0], [w3 * 2, w3 * 4])


def test_attention_is_stable_for_large_logits() -> None:
    _, logits = aggregate_logits(np.array([[1000.0, -1000.0], [0.0, 0.0]]), np.array([0, 0]), "attention", SINGLE_LABEL)
    # weights 1 and 0.5, normalised: 2/3 and 1/3
    assert np.allclose(logits, [[2000 / 3, -2000 / 3]])


def test_aggregate_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        aggregate_logits(LOGITS, DOCUMENTS, "median", SINGLE_LABEL)
    with pytest.raises(ValueError, match="unknown task"):
        aggregate_logits(LOGITS, DOCUMENTS, "attention", "ranking")
    with pytest.raises(ValueError, match="rows x outputs"):
        aggregate_logits(LOGITS[:, 0], DOCUMENTS, "mean", REGRESSION)


def test_aggregate_labels() -> None:
    ids, labels = aggregate_labels(np.array([1, 0, 1, 0, 2]), DOCUMENTS)
    assert ids.tolist() == [5, 7, 9] and labels.tolist() == [0, 1, 2]
    multi = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 1]])
    assert aggregate_labels(multi, DOCUMENTS)[1].tolist() == [[0, 1], [1, 0], [1, 1]]
    with pytest.raises(ValueError, match="rows of document 5 carry different labels \\(row 3\\)"):
        aggregate_labels(np.array([1, 0, 1, 2, 2]), DOCUMENTS)
    with pytest.raises(ValueError, match="document 7"):
        aggregate_labels(np.array([[1, 0], [0, 1], [1, 1], [0, 1], [1, 1]]), DOCUMENTS)
