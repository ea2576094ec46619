"""Long documents: truncation modes and chunk windows, cut and tokenized; their length report and advice.

A BERT-family encoder reads at most `max_length` tokens. Today a longer text loses its end (`truncate-head`).
This module offers the other usual answers, as pure functions that training, evaluation and prediction share:

- `truncate-tail` keeps the last tokens; `head-tail` keeps the start and the end (Sun et al. 2019, "How to
  Fine-Tune BERT for Text Classification": head 128 + tail 382 of 512 tokens did best);
- `chunk` cuts each document into overlapping windows, one row each; a model classifies every window and
  `aggregate_logits` turns the window logits into one prediction per document.

Every encoding is unpadded (the collator pads per batch) and carries a `document` column: the index of the
text each row came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from nlp_transfer.config.long_text import LONG_TEXT_MODES, LongTextSettings
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.documents import DOCUMENT

if TYPE_CHECKING:
    import pyarrow as pa

RECOMMENDED_MODES = ("chunk", "truncate-tail")
"""What `truncation_advice` suggests, best first, as measured on full-length IMDB reviews (BENCHMARKS.md, "Long
documents"): at 128 tokens chunk read 0.89 (about 3x the windows, so 3x the time), truncate-tail 0.868, head-tail
0.856, truncate-head 0.825; at 512, where a tenth of the reviews is cut, the truncations were within 0.005."""
ADVICE_SHARE = 0.10
"""Advice is given when more than this share of the documents is truncated."""
HEAD_SHARE = (128, 510)
"""head-tail's head: 128 of BERT's 510 text tokens (Sun et al.), scaled to other budgets."""
LENGTH_BATCH = 1000
"""Texts per tokenizer call in `token_lengths` (whole long documents, untruncated)."""
LENGTH_SAMPLE_TOKENS = 8192
"""The length report counts a text up to this many tokens' worth of characters (`character_budget`) whole; a
longer one's length is estimated from a sample of at least this many tokens (a 50 MB cell is certainly longer
than any max length; its exact count is not worth a minute and gigabytes)."""

_LOST = {"truncate-head": "their end", "truncate-tail": "their start", "head-tail": "their middle"}
_KEPT = {
    "truncate-tail": "keeps the end",
    "head-tail": "keeps the start and the end",
    "chunk": "reads all of each document in windows",
}


# ---------------------------------------------------------------------------------- encoding


def content_tokens(tokenizer: Any, max_length: int) -> int:
    """The text tokens one row of `max_length` holds: the rest goes to special tokens ([CLS], [SEP])."""
    return max_length - tokenizer.num_special_tokens_to_add(pair=False)


def head_tail_split(content: int) -> tuple[int, int]:
    """(head, tail) text tokens for head-tail: head = round(content * 128 / 510), half up; tail = the rest.

    510 text tokens (BERT, max length 512) give Sun et al.'s 128 + 382; 126 (max length 128) give 32 + 94.
    """
    head = (content * HEAD_SHARE[0] + HEAD_SHARE[1] // 2) // HEAD_SHARE[1]
    return head, content - head


CHARS_PER_TOKEN = 32
"""The character budget of a truncating mode, per token it keeps. A WordPiece or BPE token of real text spans a
few characters (about 4 in English, rarely over 10-20 for long words, numbers or markup), so no realistic text
needs 32 per token; only pathological text (long runs of whitespace or symbols that make no tokens) does, and
for that the cut is checked (below). Texts up to twice the budget are tokenized whole, exactly as before; a longer
one is cut at a word's end to the budget's worth of its head, its tail, or both (head-tail), and each part must
still hold BOUNDARY_TOKENS more tokens than are kept, else the budget grows (x4) until it does or the text is read
whole: the kept tokens are then those of the whole text. A 50 MB cell is tokenized in milliseconds, not a minute."""
MIN_BUDGET = 16_384
"""The least budget whatever the max length: texts under 32,768 characters (a long article) are never cut."""
BOUNDARY_TOKENS = 128
"""Tokens beyond those kept that a cut part must hold: the few tokens at a cut may differ from the whole text's."""
_WORD_END = (re.compile(r"(?<=\S) "), re.compile(r"(?<=\S)\s"))
"""Where a word ends: at a space after it, else at any whitespace. A text cut there tokenizes on both sides as the
whole does with the usual pre-tokenizers (BERT's whitespace split, GPT-2's byte-level regex, SentencePiece's
metaspace): the whitespace starts the next pre-token and never ends a word's."""
_WORD_END_REVERSED = (re.compile(r" (?=\S)"), re.compile(r"\s(?=\S)"))
"""The same places in a reversed text, to find the last word end before a point (a regex searches forwards)."""


def character_budget(max_length: int) -> int:
    """Characters of a text a truncating mode reads at most before the cut is checked: see CHARS_PER_TOKEN."""
    return max(max_length * CHARS_PER_TOKEN, MIN_BUDGET)


def cut_texts(tokenizer: Any, texts: Sequence[str], mode: str, max_length: int) -> list[str]:
    """`texts` with each one longer than twice the character budget cut to the part `mode` reads (its head, its
    tail, or both ends for head-tail); shorter ones unchanged. Tokenizing the result keeps the same tokens.

    Single texts only: the texts of a pair are cut together, by `cut_pairs`."""
    budget = character_budget(max_length)
    needed = max_length + BOUNDARY_TOKENS
    return [text if len(text) <= 2 * budget else _cut(tokenizer, text, mode, needed, budget) for text in texts]


def cut_pairs(
    tokenizer: Any, texts: Sequence[str], pairs: Sequence[str], max_length: int
) -> tuple[list[str], list[str]]:
    """truncate-head's cut of text pairs (as `cut_texts`), keeping the tokens of the whole pair.

    Truncation of a pair (longest first) gives two long texts half the room each, and the longer one the odd
    token: so a cut text must stay as much longer, or not, than its partner as it was whole.
    """
    budget = character_budget(max_length)
    cut = [
        (first, second)
        if max(len(first), len(second)) <= 2 * budget
        else _cut_pair(tokenizer, first, second, max_length + BOUNDARY_TOKENS, budget)
        for first, second in zip(texts, pairs)
    ]
    return [first for first, _ in cut], [second for _, second in cut]


def _cut_pair(tokenizer: Any, first: str, second: str, least: int, budget: int) -> tuple[str, str]:
    """A pair cut so that each text holds `least` tokens and the longer (whole) text stays the longer."""
    if min(len(first), len(second)) <= 2 * budget:  # one huge text: cut it to more tokens than its partner's
        if len(first) > 2 * budget:
            needed = max(least, _token_count(tokenizer, second) + 1)
            return _cut(tokenizer, first, "truncate-head", needed, budget), second
        needed = max(least, _token_count(tokenizer, first) + 1)
        return first, _cut(tokenizer, second, "truncate-head", needed, budget)
    # Two huge texts: which is longer is known only from all their tokens, counted piece by piece (no memory).
    if _streamed_count(tokenizer, first, 2 * budget) <= _streamed_count(tokenizer, second, 2 * budget):
        first = _cut(tokenizer, first, "truncate-head", least, budget)  # a tie gives the first the floor: >= here
        return first, _cut(tokenizer, second, "truncate-head", max(least, _token_count(tokenizer, first)), budget)
    second = _cut(tokenizer, second, "truncate-head", least, budget)
    return _cut(tokenizer, first, "truncate-head", max(least, _token_count(tokenizer, second) + 1), budget), second


def count_long(texts: Sequence[str] | pa.ChunkedArray, max_length: int) -> int:
    """How many of `texts` `cut_texts` cuts (and chunk mode reads piece by piece), for the log: a pass over their
    lengths. An Arrow column (a split's) is measured from its offsets, without a Python string of each text."""
    limit = 2 * character_budget(max_length)
    if isinstance(texts, Sequence):
        return sum(len(text) > limit for text in texts)
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        return count_long([str(text) for text in texts.to_pylist()], max_length)  # numbers read as texts
    return int(pc.sum(pc.greater(pc.utf8_length(texts), limit)).as_py() or 0)


def _cut(tokenizer: Any, text: str, mode: str, needed: int, budget: int) -> str:
    """`text` cut to its parts `mode` reads, of `budget` characters or more: as many as hold `needed` tokens."""
    while len(text) > 2 * budget:
        parts = []
        if mode in ("truncate-head", "head-tail"):
            parts.append(text[: _last_word_end(text, 0, budget)])
        if mode in ("truncate-tail", "head-tail"):
            parts.append(text[_first_word_end(text, len(text) - budget) :])
        if all(_token_count(tokenizer, part) >= needed for part in parts):
            return " ".join(parts)
        budget *= 4  # dense text (long runs of whitespace or symbols): read more of it
    return text


def _last_word_end(text: str, start: int, end: int) -> int:
    """The last word end (see _WORD_END) in text[start + 1 : end]; `end` if there is none."""
    window = text[start:end][::-1]
    for pattern in _WORD_END_REVERSED:
        found = pattern.search(window)
        if found:
            return end - 1 - found.start()
    return end


def _first_word_end(text: str, start: int) -> int:
    """The first word end (see _WORD_END) in text[start:]; `start` if there is none."""
    for pattern in _WORD_END:
        found = pattern.search(text, start)
        if found:
            return found.start()
    return start


def _ids(tokenizer: Any, text: str) -> list[int]:
    """The token ids of `text`, without special tokens."""
    return tokenizer(text, add_special_tokens=False, verbose=False, return_attention_mask=False)["input_ids"]


def _token_count(tokenizer: Any, text: str) -> int:
    return len(_ids(tokenizer, text))


def _streamed_count(tokenizer: Any, text: str, segment: int) -> int:
    """`_token_count` of a huge text, tokenized a segment at a time (see `_segments`)."""
    return sum(_token_count(tokenizer, piece) for piece in _segments(text, segment))


def _segments(text: str, size: int) -> Iterator[str]:
    """`text` in consecutive pieces of at most `size` characters that end at a word's end (see _WORD_END), so that
    each word is tokenized as in the whole text; only a text with no whitespace in `size` characters is cut
    mid-word, which may change a token or two there."""
    start = 0
    while start < len(text):
        end = len(text) if len(text) - start <= size else _last_word_end(text, start, start + size)
        yield text[start:end]
        start = end


class TokenLengths(list):
    """Token lengths (a list of int), and how many of them are estimated from a sample (`token_lengths`)."""

    estimated: int = 0


def token_lengths(
    tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None = None, batch: int = LENGTH_BATCH
) -> TokenLengths:
    """Each text's (or pair's) full length in tokens, special tokens included, untruncated.

    Tokenized `batch` texts at a time, keeping only the lengths: the encodings of a whole split of long
    documents at once would hold every token id in memory. A text (or pair) over `character_budget
    (LENGTH_SAMPLE_TOKENS)` characters is counted on its head and its length estimated (`_estimate`); `estimated`
    says how many were, so that the report can say its figures are estimates.
    """
    lengths = TokenLengths()
    budget = character_budget(LENGTH_SAMPLE_TOKENS)
    for start in range(0, len(texts), batch):
        chunk = [_sample(text, budget) for text in texts[start : start + batch]]
        paired = [_sample(text, budget) for text in pairs[start : start + batch]] if pairs else None
        encoded = tokenizer(chunk, paired, truncation=False, verbose=False, return_attention_mask=False)
        lengths += [len(ids) for ids in encoded["input_ids"]]
    for i, text in enumerate(texts):
        pair = pairs[i] if pairs else None
        if max(len(text), len(pair or "")) > budget:
            lengths[i], whole = _estimate(tokenizer, text, pair, budget, lengths[i])
            if not whole:
                lengths.estimated += 1
    return lengths


def _estimate(tokenizer: Any, text: str, pair: str | None, budget: int, tokens: int) -> tuple[int, bool]:
    """(length, whether it was measured whole) of a text (and pair) from `tokens`, those of its first `budget`
    characters, scaled by its length.

    A sample of fewer than LENGTH_SAMPLE_TOKENS tokens (a run of whitespace) grows (x4) until it has them or is
    the whole text, so an estimate is never below them: a text counted as longer than max_length is (up to
    LENGTH_SAMPLE_TOKENS), and one measured whole is exact. On real text the estimate is within a few percent
    (0.2% on a 50 MB cell of 9.7 million tokens).
    """
    length = len(text) + len(pair or "")
    while tokens < LENGTH_SAMPLE_TOKENS and max(len(text), len(pair or "")) > budget:
        budget *= 4
        sample_pair = _sample(pair, budget) if pair is not None else None
        encoded = tokenizer(_sample(text, budget), sample_pair, verbose=False, return_attention_mask=False)
        tokens = len(encoded["input_ids"])
    sampled = min(len(text), budget) + min(len(pair or ""), budget)
    return int(round(tokens * length / max(sampled, 1))), sampled == length


def _sample(text: str, budget: int) -> str:
    return text if len(text) <= budget else text[:budget]


def encode_documents(
    tokenizer: Any, texts: list[str], settings: LongTextSettings, pairs: list[str] | None = None
) -> dict[str, list]:
    """The tokenizer's columns (unpadded) plus `document`, the index in `texts` of each row's source.

    One row per text, except in `chunk` mode: one row per window of `content_tokens` text tokens, consecutive
    windows sharing `stride` tokens (the fast tokenizer's own overflow windows).
    """
    settings.check(content_tokens(tokenizer, settings.max_length))
    mode, limit = settings.mode, settings.max_length
    if pairs is not None and mode != "truncate-head":
        raise UserInputError(
            f"--long-text {mode} reads single texts, and this data has text pairs; join the pair into one text "
            "column or use --long-text truncate-head."
        )
    if not texts:
        return {**{name: [] for name in tokenizer.model_input_names}, DOCUMENT: []}
    if pairs is not None:
        texts, pairs = cut_pairs(tokenizer, texts, pairs, limit)
    elif mode != "chunk":
        texts = cut_texts(tokenizer, texts, mode, limit)
    if mode == "truncate-head":  # today's behaviour, unchanged
        columns = dict(tokenizer(texts, pairs, truncation=True, max_length=limit))
    elif mode == "truncate-tail":
        with _truncation_side(tokenizer, "left"):
            columns = dict(tokenizer(texts, truncation=True, max_length=limit))
    elif mode == "head-tail":
        columns = _head_tail(tokenizer, texts, limit)
    else:
        return _chunks(tokenizer, texts, settings)
    return {**columns, DOCUMENT: list(range(len(texts)))}


@contextmanager
def _truncation_side(tokenizer: Any, side: str) -> Iterator[None]:
    """Truncate from `side` for the duration, then restore the caller's setting."""
    before = tokenizer.truncation_side
    tokenizer.truncation_side = side
    try:
        yield
    finally:
        tokenizer.truncation_side = before


def _head_tail(tokenizer: Any, texts: list[str], limit: int) -> dict[str, list]:
    """Encode whole, then keep the special tokens, the first `head` and the last `tail` text tokens.

    Slicing the full encoding equals encoding the kept token ids: the tokenizer's template puts a fixed number
    of special tokens before and after a single text (read from a probe), and its attention mask and token
    types give every text token the same value, so the kept positions carry exactly what they would.
    """
    head, tail = head_tail_split(content_tokens(tokenizer, limit))
    mask = tokenizer("a", return_special_tokens_mask=True)["special_tokens_mask"]
    prefix = next(i for i, special in enumerate(mask) if not special)
    suffix = next(i for i, special in enumerate(reversed(mask)) if not special)
    full = dict(tokenizer(texts, truncation=False, verbose=False))
    for name, rows in full.items():
        full[name] = [
            row if len(row) <= limit else row[: prefix + head] + row[len(row) - suffix - tail :] for row in rows
        ]
    return full


def _chunks(tokenizer: Any, texts: list[str], settings: LongTextSettings) -> dict[str, list]:
    """Overflow windows of the fast tokenizer: window k holds text tokens [k * step, k * step + content), with
    step = content - stride, until a window reaches the end; a text that fits is one window."""
    if not getattr(tokenizer, "is_fast", False):
        raise UserInputError(
            f"--long-text chunk needs a fast (Rust) tokenizer, and this checkpoint's is {type(tokenizer).__name__}; "
            "use --long-text head-tail or a checkpoint with a tokenizer.json."
        )
    budget = 2 * character_budget(settings.max_length)
    huge = [i for i, text in enumerate(texts) if len(text) > budget]
    if not huge:
        return _overflow_windows(tokenizer, texts, settings)
    # A huge text is tokenized piece by piece and windowed here: the fast tokenizer's overflow would hold the
    # encoding (ids, offsets, masks) of all of it at once. Texts are kept in order, each its own run.
    columns: dict[str, list] = {}
    start = 0
    for end in [*huge, len(texts)]:
        runs = [_overflow_windows(tokenizer, texts[start:end], settings)] if end > start else []
        if end < len(texts):
            runs.append(_streamed_windows(tokenizer, texts[end], settings, budget))
        for run, first in zip(runs, (start, end) if end > start else (end,)):
            for name, values in run.items():
                columns.setdefault(name, []).extend([first + i for i in values] if name == DOCUMENT else values)
        start = end + 1
    return columns


def _overflow_windows(tokenizer: Any, texts: list[str], settings: LongTextSettings) -> dict[str, list]:
    encoded = tokenizer(
        texts,
        truncation=True,
        max_length=settings.max_length,
        stride=settings.stride,
        return_overflowing_tokens=True,
    )
    columns = dict(encoded)
    columns[DOCUMENT] = columns.pop("overflow_to_sample_mapping")
    return columns


def _streamed_windows(tokenizer: Any, text: str, settings: LongTextSettings, segment: int) -> dict[str, list]:
    """The windows of one huge text, as the overflow windows are cut, from its tokens read segment by segment.

    Segments (`_segments`) end at a word's end, so the windows are the tokenizer's own. Memory: its encoding
    (offsets, masks, about 100 bytes a token) exists for one segment at a time; all ids are kept as one int32
    array (4 bytes a token) and the windows as rows, the output itself, whose constant columns share one list.
    """
    pieces = [np.asarray(_ids(tokenizer, piece), dtype=np.int32) for piece in _segments(text, segment)]
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    content = content_tokens(tokenizer, settings.max_length)
    step = content - settings.stride
    # The special tokens around one text, and the value each column gives a text token, from a probe: the same
    # template the tokenizer applies (as in `_head_tail`).
    probe = dict(tokenizer("a", return_special_tokens_mask=True))
    mask = probe.pop("special_tokens_mask")
    prefix = next(i for i, special in enumerate(mask) if not special)
    suffix = next(i for i, special in enumerate(reversed(mask)) if not special)
    columns: dict[str, list] = {name: [] for name in probe}
    columns[DOCUMENT] = []
    shared: dict[tuple[str, int], list[int]] = {}  # (column, window length): the row of a column other than ids
    for first in range(0, max(len(ids) - settings.stride, 1), step):
        window = ids[first : first + content].tolist()
        for name, row in probe.items():
            if name == "input_ids":
                columns[name].append(row[:prefix] + window + row[len(row) - suffix :])
                continue
            key = (name, len(window))
            if key not in shared:
                shared[key] = row[:prefix] + [row[prefix]] * len(window) + row[len(row) - suffix :]
            columns[name].append(shared[key])
        columns[DOCUMENT].append(0)
        if first + content >= len(ids):
            break
    return columns


# ---------------------------------------------------------------------------------- lengths and advice


def length_report(lengths: list[int], max_length: int) -> dict[str, Any]:
    """How many documents exceed `max_length` tokens, and the distribution of lengths (linear percentiles).

    `estimated`, only where `token_lengths` estimated some lengths (texts of over a quarter million characters):
    how many. Each is at least LENGTH_SAMPLE_TOKENS, so longer than any max length up to that: `truncated` stays
    right, while the figures the longest texts make (max, mean, high percentiles) are estimates.
    """
    if not lengths:
        raise ValueError("length_report needs at least one length")
    values = np.asarray(lengths, dtype=float)
    truncated = int((values > max_length).sum())
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    report = {
        "documents": len(values),
        "max_length": max_length,
        "truncated": truncated,
        "truncated_share": round(truncated / len(values), 4),
        "tokens": {
            "min": int(values.min()),
            "p50": round(float(p50), 1),
            "p90": round(float(p90), 1),
            "p99": round(float(p99), 1),
            "max": int(values.max()),
            "mean": round(float(values.mean()), 1),
        },
    }
    if getattr(lengths, "estimated", 0):
        report["estimated"] = lengths.estimated
    return report


def truncation_advice(report: dict[str, Any], mode: str, offered: tuple[str, ...] = LONG_TEXT_MODES) -> str | None:
    """One line suggesting a long-text mode when more than 10% of the documents lose tokens; None otherwise.

    `offered`: the modes the caller can run (a suggestion of one it cannot would send the user nowhere).
    """
    share = report["truncated_share"]
    if mode == "chunk" or share <= ADVICE_SHARE:
        return None
    options = [m for m in RECOMMENDED_MODES if m != mode and m in offered]
    suggestion = " or ".join(f"--long-text {m} ({_KEPT[m]})" for m in options)
    suggestion = suggestion or "a larger --max-length, up to the model's limit"
    return (
        f"{share:.1%} of {report['documents']} documents ({report['truncated']}) are longer than "
        f"{report['max_length']} tokens and lose {_LOST.get(mode, 'tokens')} to --long-text {mode}; try {suggestion}."
    )
