"""Long documents: truncation modes, chunking, and turning chunk logits back into document logits.

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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from nlp_transfer.errors import UserInputError
from nlp_transfer.tasks import MULTI_LABEL, SINGLE_LABEL, TASKS

LONG_TEXT_MODES = ("truncate-head", "truncate-tail", "head-tail", "chunk")
AGGREGATIONS = ("mean", "max", "first", "attention")
DOCUMENT = "document"
"""The column of a chunk row that names its document (the text's row in its split)."""
RECOMMENDED_MODES = ("chunk", "truncate-tail")
"""What `truncation_advice` suggests, best first, as measured on full-length IMDB reviews (BENCHMARKS.md, "Long
documents"): at 128 tokens chunk read 0.89 (about 3x the windows, so 3x the time), truncate-tail 0.868, head-tail
0.856, truncate-head 0.825; at 512, where a tenth of the reviews is cut, the truncations were within 0.005."""
ADVICE_SHARE = 0.10
"""Advice is given when more than this share of the documents is truncated."""
HEAD_SHARE = (128, 510)
"""head-tail's head: 128 of BERT's 510 text tokens (Sun et al.), scaled to other budgets."""
LENGTH_BATCH = 1000
LENGTH_SAMPLE_TOKENS = 8192
"""The length report tokenizes a text up to this many tokens' worth of characters whole; a longer one's length
is extrapolated from that sample (a 50 MB cell is certainly longer than any max length; its exact count is not
worth minutes and gigabytes)."""
"""Texts per tokenizer call in `token_lengths` (whole long documents, untruncated)."""

_LOST = {"truncate-head": "their end", "truncate-tail": "their start", "head-tail": "their middle"}
_KEPT = {
    "truncate-tail": "keeps the end",
    "head-tail": "keeps the start and the end",
    "chunk": "reads all of each document in windows",
}


@dataclass
class LongTextSettings:
    """How texts longer than `max_length` tokens are read; saved with the model so prediction reads alike.

    `stride` (tokens shared by consecutive chunks) and `aggregate` only mean something for `chunk`: `check`
    refuses values other than their defaults with any other mode, rather than silently ignoring them.
    """

    mode: str = "truncate-head"
    max_length: int = 512
    stride: int = 0
    aggregate: str = "mean"

    def check(self, content_tokens: int | None = None) -> None:
        """Raise `UserInputError` on a bad option; `content_tokens` (the text tokens a row holds, see
        `content_tokens()`) bounds the stride, and is checked only where given."""
        if self.mode not in LONG_TEXT_MODES:
            raise UserInputError(
                f"--long-text {self.mode!r} is not a long-text mode; use one of {', '.join(LONG_TEXT_MODES)}."
            )
        if self.aggregate not in AGGREGATIONS:
            raise UserInputError(
                f"--chunk-aggregate {self.aggregate!r} is not an aggregation; use one of {', '.join(AGGREGATIONS)}."
            )
        if self.max_length <= 0:
            raise UserInputError(f"--max-length must be a positive number of tokens, not {self.max_length}.")
        if self.mode != "chunk":
            chunk_only = (("--chunk-stride", self.stride, 0), ("--chunk-aggregate", self.aggregate, "mean"))
            for option, value, default in chunk_only:
                if value != default:
                    raise UserInputError(
                        f"{option} {value} only applies to --long-text chunk, not --long-text {self.mode}; "
                        f"drop {option} or use --long-text chunk."
                    )
        if self.stride < 0:
            raise UserInputError(
                f"--chunk-stride {self.stride} is negative; give the number of tokens consecutive chunks share "
                "(0 or more)."
            )
        if content_tokens is not None:
            self._check_room(content_tokens)

    def _check_room(self, content_tokens: int) -> None:
        """A row must hold some text, and a chunk must move on: the stride stays below the text it holds."""
        if content_tokens <= 0:
            raise UserInputError(
                f"--max-length {self.max_length} leaves no room for text beside the tokenizer's "
                f"{self.max_length - content_tokens} special tokens; use a larger --max-length."
            )
        if self.stride >= content_tokens:
            raise UserInputError(
                f"--chunk-stride {self.stride} must be smaller than the {content_tokens} text tokens a chunk of "
                f"--max-length {self.max_length} holds; use at most {content_tokens - 1}."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> LongTextSettings:
        """Settings from `to_dict()`'s output; defaults where absent (a model saved before long-text modes
        existed was read with truncate-head), unknown keys ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in (values or {}).items() if name in known})


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
"""The character budget of a truncating mode, per token it keeps: a WordPiece or BPE token of real text spans a
few characters (about 4 on English), so 32 leaves room for long words, numbers and markup. Texts within the
budget are tokenized whole, exactly as before; a longer one is cut, at whitespace, to its part the mode reads,
and the cut is checked to still hold more tokens than are kept (else the budget grows), so the kept tokens equal
those of the whole text. A 50 MB cell is then tokenized in milliseconds instead of minutes and gigabytes."""
MIN_BUDGET = 4096
BOUNDARY_TOKENS = 128
"""Tokens beyond those kept that a cut must hold: the pre-token cut at the boundary may tokenize differently."""


def character_budget(max_length: int) -> int:
    """Characters of a text a truncating mode reads at most before the cut is checked: see CHARS_PER_TOKEN."""
    return max(max_length * CHARS_PER_TOKEN, MIN_BUDGET)


def cut_texts(tokenizer: Any, texts: Sequence[str], mode: str, max_length: int) -> list[str]:
    """`texts` with each one longer than the character budget cut to the part `mode` reads (its head, its tail,
    or both ends for head-tail); shorter ones unchanged. Tokenizing the result keeps the same tokens as the whole."""
    budget = character_budget(max_length)
    return [text if len(text) <= 2 * budget else _cut(tokenizer, text, mode, max_length, budget) for text in texts]


def count_long(texts: Sequence[str], max_length: int) -> int:
    """How many of `texts` `cut_texts` cuts (a cheap pass over their lengths, for the log)."""
    budget = character_budget(max_length)
    return sum(len(text) > 2 * budget for text in texts)


def _cut(tokenizer: Any, text: str, mode: str, max_length: int, budget: int) -> str:
    while len(text) > 2 * budget:
        parts = []
        if mode in ("truncate-head", "head-tail"):
            end = text.rfind(" ", 0, budget)  # cut before whitespace: the words kept tokenize as in the whole
            parts.append(text[: end if end > 0 else budget])
        if mode in ("truncate-tail", "head-tail"):
            start = text.find(" ", len(text) - budget)  # start at the whitespace: BPE keeps the leading space
            parts.append(text[start if start >= 0 else len(text) - budget :])
        needed = max_length + BOUNDARY_TOKENS
        if all(_token_count(tokenizer, part) >= needed for part in parts):
            return " ".join(parts) if len(parts) == 2 else parts[0]
        budget *= 4  # dense text (long runs of whitespace or symbols): read more of it
    return text


def _token_count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, verbose=False, return_attention_mask=False)["input_ids"])


def token_lengths(
    tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None = None, batch: int = LENGTH_BATCH
) -> list[int]:
    """Each text's (or pair's) full length in tokens, special tokens included, untruncated.

    Tokenized `batch` texts at a time, keeping only the lengths: the encodings of a whole split of long
    documents at once would hold every token id in memory. A text longer than LENGTH_SAMPLE_TOKENS' budget is
    counted on its head and extrapolated by its length.
    """
    lengths: list[int] = []
    budget = character_budget(LENGTH_SAMPLE_TOKENS)
    for start in range(0, len(texts), batch):
        chunk = [_sample(text, budget) for text in texts[start : start + batch]]
        paired = [_sample(text, budget) for text in pairs[start : start + batch]] if pairs else None
        encoded = tokenizer(chunk, paired, truncation=False, verbose=False, return_attention_mask=False)
        lengths += [len(ids) for ids in encoded["input_ids"]]
    for i, text in enumerate(texts):  # a text over the budget: its sample's density times its length
        pair = pairs[i] if pairs else ""
        if len(text) > budget or len(pair) > budget:
            lengths[i] = _extrapolated(
                lengths[i], len(text) + len(pair), min(len(text), budget) + min(len(pair), budget)
            )
    return lengths


def _sample(text: str, budget: int) -> str:
    return text if len(text) <= budget else text[:budget]


def _extrapolated(tokens: int, length: int, sampled: int) -> int:
    return int(round(tokens * length / max(sampled, 1)))


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
    if mode != "chunk":
        texts = cut_texts(tokenizer, texts, mode, limit)
        pairs = cut_texts(tokenizer, pairs, mode, limit) if pairs is not None else None
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

    Segments end before whitespace, so each word is tokenized whole, as in the whole text; the ids are kept as
    one int32 array (4 bytes a token) rather than the tokenizer's per-token encodings.
    """
    pieces, start = [], 0
    while start < len(text):
        end = len(text) if len(text) - start <= segment else text.rfind(" ", start + 1, start + segment)
        end = end if end > start else min(start + segment, len(text))
        ids = tokenizer(text[start:end], add_special_tokens=False, verbose=False, return_attention_mask=False)
        pieces.append(np.asarray(ids["input_ids"], dtype=np.int32))
        start = end
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
    for first in range(0, max(len(ids) - settings.stride, 1), step):
        window = ids[first : first + content].tolist()
        for name, row in probe.items():
            inner = window if name == "input_ids" else [row[prefix]] * len(window)
            columns[name].append(row[:prefix] + inner + row[len(row) - suffix :])
        columns[DOCUMENT].append(0)
        if first + content >= len(ids):
            break
    return columns


# ---------------------------------------------------------------------------------- lengths and advice


def length_report(lengths: list[int], max_length: int) -> dict[str, Any]:
    """How many documents exceed `max_length` tokens, and the distribution of lengths (linear percentiles)."""
    if not lengths:
        raise ValueError("length_report needs at least one length")
    values = np.asarray(lengths, dtype=float)
    truncated = int((values > max_length).sum())
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
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


# ---------------------------------------------------------------------------------- aggregation


def _groups(documents: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(document ids in ascending order, each row's position among them, each document's first row).

    Ascending, not the rows' order: windows computed longest first still come back in the documents' own order."""
    ids, first, inverse = np.unique(np.asarray(documents), return_index=True, return_inverse=True)
    return ids, inverse.reshape(-1), first


def _confidence(logits: np.ndarray, task: str) -> np.ndarray:
    """Each row's log-confidence: log top-class probability; mean log max(p, 1 - p) over labels; or 0."""
    if task == SINGLE_LABEL:
        top = logits.max(axis=1)
        return -np.log(np.exp(logits - top[:, None]).sum(axis=1))  # log-softmax of the top class
    if task == MULTI_LABEL:
        return -np.logaddexp(0.0, -np.abs(logits)).mean(axis=1)  # log sigmoid(|z|) = log max(p, 1 - p)
    return np.zeros(len(logits))  # regression: no confidence to read, equal weights


def aggregate_logits(logits: np.ndarray, documents: np.ndarray, how: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Chunk logits (rows x outputs) -> (document ids in ascending order, document logits).

    Rows of a document need not be contiguous. `mean` and `max` are element-wise over a document's rows;
    `first` takes its lowest-index row. `attention` is attention over chunks by their own confidence, with no
    new weights: a softmax, over a document's chunks, of each chunk's log-confidence (`_confidence`) weighs
    their logits. For single-label the weights are the chunks' top-class probabilities normalised; for
    multi-label the geometric means over labels of max(p, 1 - p) normalised; for regression equal (the mean).
    """
    logits = np.asarray(logits, dtype=float)
    if logits.ndim != 2 or len(logits) != len(documents):
        raise ValueError(f"logits must be rows x outputs, one row per document id; got {logits.shape}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {TASKS}")
    ids, group, first = _groups(documents)
    if how == "first":
        return ids, logits[first]
    if how == "max":
        out = np.full((len(ids), logits.shape[1]), -np.inf)
        np.maximum.at(out, group, logits)
        return ids, out
    if how == "mean":
        weights = np.ones(len(logits))
    elif how == "attention":
        score = _confidence(logits, task)
        top = np.full(len(ids), -np.inf)
        np.maximum.at(top, group, score)
        weights = np.exp(score - top[group])  # softmax within each document, stable
    else:
        raise ValueError(f"unknown aggregation {how!r}; use one of {AGGREGATIONS}")
    total = np.zeros(len(ids))
    np.add.at(total, group, weights)
    out = np.zeros((len(ids), logits.shape[1]))
    np.add.at(out, group, (weights / total[group])[:, None] * logits)
    return ids, out


def aggregate_labels(labels: np.ndarray, documents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(document ids in ascending order, each document's label). Every chunk of a document carries the
    document's label, so rows that disagree are a bug upstream and raise ValueError."""
    labels = np.asarray(labels)
    ids, group, first = _groups(documents)
    per_row = labels[first][group]
    same = per_row == labels
    if np.issubdtype(labels.dtype, np.floating):
        same |= np.isnan(per_row) & np.isnan(labels)
    if not same.all():
        rows = np.flatnonzero(~same.reshape(len(labels), -1).all(axis=1))
        raise ValueError(f"rows of document {ids[group[rows[0]]]} carry different labels (row {rows[0]})")
    return ids, labels[first]


def per_document(logits: np.ndarray, label_ids: Any, how: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Trainer's outputs on a split -> (logits, labels) per document.

    A chunked split is evaluated with label_names (labels, document), so its `label_ids` is the pair (chunk
    labels, document ids): the chunks are aggregated `how` says, one row per document in ascending id order.
    Any other split's `label_ids` is the labels themselves, returned with the logits as they are.
    """
    if not isinstance(label_ids, (tuple, list)):
        return logits, label_ids
    labels, documents = label_ids
    documents = np.asarray(documents).reshape(-1)
    ids, document_logits = aggregate_logits(logits, documents, how, task)
    label_ids_in_order, document_labels = aggregate_labels(labels, documents)
    if not np.array_equal(ids, label_ids_in_order):  # both sort by id; a guard for the next reader
        raise ValueError("document order of logits and labels differs")
    return document_logits.astype(np.asarray(logits).dtype, copy=False), document_labels
