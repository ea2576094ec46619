"""Tokenization: the resolved max length, every split encoded as --long-text says, and rows ordered longest first."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from datasets import DatasetDict

from nlp_transfer.config.long_text import LongTextSettings
from nlp_transfer.data.columns import ROW_COLUMN
from nlp_transfer.data.long_text import character_budget, count_long, cut_texts, encode_documents
from nlp_transfer.data.prepare import PreparedData
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.documents import DOCUMENT

logger = logging.getLogger(__name__)

MAX_LENGTH_CAP = 512


def longest_first(lengths: Sequence[int]) -> np.ndarray:
    """Row indices from the longest row to the shortest (stable): batches of rows of similar length pad little.

    For evaluation and prediction, where the order changes no result: SST-2's validation sentences run from 2 to
    55 tokens, and a batch padded to its longest row spent most of its compute on padding. Put results back
    in input order with `np.argsort(order)`.
    """
    return np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")


def resolve_max_length(tokenizer: Any, requested: int | None) -> int:
    """--max-length, or the tokenizer's limit capped at 512 (some tokenizers report 1e30)."""
    limit = min(int(getattr(tokenizer, "model_max_length", MAX_LENGTH_CAP) or MAX_LENGTH_CAP), MAX_LENGTH_CAP)
    if requested is None:
        return limit
    if requested <= 0:
        raise UserInputError(f"--max-length must be a positive number of tokens, not {requested}.")
    model_limit = int(getattr(tokenizer, "model_max_length", requested) or requested)
    if requested > model_limit:
        raise UserInputError(
            f"--max-length {requested} exceeds the tokenizer's limit of {model_limit} tokens. Use at most "
            f"{model_limit}."
        )
    return requested


def tokenize(
    data: PreparedData,
    tokenizer: Any,
    max_length: int | None,
    long_text: str = "truncate-head",
    chunk_stride: int = 0,
) -> DatasetDict:
    """Encode every split once, batched, cut to the resolved max length as `long_text` says, unpadded.

    Padding happens per batch in the collator (DataCollatorWithPadding), never to a fixed length here. With
    `chunk`, a text becomes one row per window, each with the text's label and a `document` column (the text's
    row in its split), by which evaluation puts a text's windows back together.
    """
    limit = resolve_max_length(tokenizer, max_length)
    text, pair = data.text_column, data.text_pair_column
    settings = LongTextSettings(mode=long_text, max_length=limit, stride=chunk_stride)
    settings.check()
    if pair and long_text != "truncate-head":
        raise UserInputError(
            f"--long-text {long_text} reads single texts, and this data has text pairs ({text}, {pair}): join the "
            "two texts into one column, or use --long-text truncate-head."
        )
    drop = [c for c in (text, pair, ROW_COLUMN) if c]
    for name, split in data.splits.items():  # once a split, before its batches: a pass over the Arrow lengths
        huge = sum(count_long(split.with_format("arrow")[column], limit) for column in (text, pair) if column)
        if huge:
            logger.info(
                "%d texts of %s are over %d characters: tokenized %s",
                huge,
                name,
                2 * character_budget(limit),
                "piece by piece into their windows (the same windows, without the encoding of all of a text)"
                if long_text == "chunk"
                else f"from the part --long-text {long_text} reads (the same tokens, without reading all of them)",
            )
    if long_text == "chunk":
        return data.splits.map(
            partial(_encode_chunks, tokenizer=tokenizer, settings=settings, text=text, drop=drop),
            batched=True,
            with_indices=True,
            remove_columns=data.splits["train"].column_names,  # rows multiply: every column is written anew
            desc="Tokenizing (chunks)",
        )

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        first = [str(t) for t in batch[text]]
        second = [str(t) for t in batch[pair]] if pair else None
        if long_text == "truncate-head" and second is None:
            return tokenizer(cut_texts(tokenizer, first, long_text, limit), truncation=True, max_length=limit)
        encoded = encode_documents(tokenizer, first, settings, second)  # the texts of a pair are cut together
        del encoded[DOCUMENT]  # one row per text in these modes
        return encoded

    return data.splits.map(encode, batched=True, remove_columns=drop, desc="Tokenizing")


def _encode_chunks(
    batch: dict[str, list[Any]],
    indices: list[int],
    tokenizer: Any,
    settings: LongTextSettings,
    text: str,
    drop: list[str],
) -> dict[str, list[Any]]:
    """One batch of texts as chunk rows: the tokenizer's columns, `document` (the text's row in the split), and
    every kept column (labels) repeated for each of the text's chunks."""
    encoded = encode_documents(tokenizer, [str(t) for t in batch[text]], settings)
    local = encoded[DOCUMENT]
    encoded[DOCUMENT] = [indices[i] for i in local]
    for name, values in batch.items():
        if name not in drop:
            encoded[name] = [values[i] for i in local]
    return encoded
