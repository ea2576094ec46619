"""How texts longer than the max length are read: the --long-text modes and their settings, checked.

Saved with the model (`PackageSettings.long_text`), so prediction reads texts as training did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.documents import AGGREGATIONS

LONG_TEXT_MODES = ("truncate-head", "truncate-tail", "head-tail", "chunk")


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
