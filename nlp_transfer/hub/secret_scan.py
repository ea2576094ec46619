"""The secret scan before a push: reading the files it would send for a Hugging Face token.

The allow-list (`upload_plan`) goes by name; this reads the content, as it is on disk and as the push sends
it, and stops the push at a token-shaped string, naming only its first characters.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from nlp_transfer.errors import UserInputError
from nlp_transfer.hub.upload_plan import UploadFile, _card_bytes, _item_source
from nlp_transfer.outputs import CARD_FILE

# A Hugging Face token: hf_ and 34 or more letters and digits (older ones: api_ or api_org_); 30 leaves a margin.
# Not preceded by a letter or digit, so a longer word ending in "hf_" is no match.
HUB_TOKEN_PATTERN = re.compile(rb"(?<![A-Za-z0-9])(?:hf|api|api_org)_[A-Za-z0-9]{30,}")
# Tensors, graphs and images: large, and not where a token is pasted.
_UNSCANNED_SUFFIXES = (".safetensors", ".onnx", ".png")
_SCAN_CHUNK = 1 << 20  # read in 1 MiB chunks: a one-line tokenizer.json is never held whole
_SCAN_OVERLAP = 64  # kept from one chunk for the next: longer than a match's shortest form (38 bytes)


def _check_secrets(folder: Path, files: list[UploadFile], repo_id: str, dry_run: bool) -> None:
    """Stop when a file the push would send holds a Hugging Face token: the allow-list goes by name, not content.

    Each file is read as it is on disk, and the card and records also as the push sends them (the card naming
    `repo_id`, the records' public copy), so a token that only the rewriting reveals is caught too. Weights and
    plots are not read. Only the token's first characters appear in the message.
    """
    for item in files:
        if item.path.endswith(_UNSCANNED_SUFFIXES):
            continue
        try:
            found, where = _find_token(str(item.source or folder / item.path)), "line {}"
            sent = _sent_copy(folder, item, repo_id) if found is None else None
            if sent is not None:
                found, where = _find_token(sent), "line {} of the copy the push sends"
        except OSError as error:
            raise UserInputError(
                f"Could not read {item.source or folder / item.path} to check it before the push "
                f"({type(error).__name__}: {error.strerror or error}). Check its permissions. Nothing was uploaded."
            ) from None
        if found is None:
            continue
        line, shown = found
        verdict = "The push would be refused" if dry_run else "Push refused"
        file = f"{item.path} in {folder}" if item.source is None else f"{item.source} (to go up as {item.path})"
        raise UserInputError(
            f"{verdict}: {file} holds what looks like a Hugging Face token ({shown}) on "
            f"{where.format(line)}, which the push would upload to the Hub. Remove the token from {item.path}, "
            "revoke it at https://huggingface.co/settings/tokens (it was kept in a file meant for upload), and "
            "push again. Nothing was uploaded."
        )


def _sent_copy(folder: Path, item: UploadFile, repo_id: str) -> bytes | None:
    """What the push sends for `item` when it is not the file as it is: the card and the records; else None."""
    if item.path == CARD_FILE:
        try:
            return _card_bytes((folder / item.path).read_text(encoding="utf-8"), repo_id)
        except UnicodeDecodeError:
            return None  # not UTF-8: the file itself was scanned
    source = _item_source(folder, item)
    return source if isinstance(source, bytes) else None


def _find_token(source: str | bytes) -> tuple[int, str] | None:
    """The line number (from 1) of the first token-shaped string in a file (a path) or in bytes, and its start.

    Only the prefix and three characters are returned (`hf_AbC…`), never the token. Read in chunks, with an
    overlap so that no token is cut between two, in bounded memory.
    """
    with open(source, "rb") if isinstance(source, str) else io.BytesIO(source) as stream:
        line, tail, cut = 1, b"", 0
        while chunk := stream.read(_SCAN_CHUNK):
            text = tail + chunk
            # After a cut, from 1: a match at the overlap's first byte was whole in the previous text, and
            # checked there with the byte before it, which the lookbehind sees from 1.
            match = HUB_TOKEN_PATTERN.search(text, 1 if cut else 0)
            if match:
                head, _, rest = match.group().decode("ascii").rpartition("_")
                return line + text.count(b"\n", 0, match.start()), f"{head}_{rest[:3]}…"
            cut = max(len(text) - _SCAN_OVERLAP, 0)
            line += text.count(b"\n", 0, cut)
            tail = text[cut:]
    return None
