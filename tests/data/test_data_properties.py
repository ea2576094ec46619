"""Property: whatever a user's CSV/TSV/JSONL holds, the loader returns data or raises the package's own error.

Random Unicode texts (quotes, separators, newlines, control characters), random separators and quoting,
header names and label columns. Anything but `PreparedData` or `UserInputError` is a traceback a user would see.
The example count is bounded so the test stays a few seconds in CI, and derandomized so CI sees the same
examples on every run (a red CI means nothing lands; a found case becomes a regular test).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the [test] extra: pip install -e '.[test]'")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nlp_transfer.config.data import DataArguments  # noqa: E402
from nlp_transfer.data.prepare import PreparedData, load_data  # noqa: E402
from nlp_transfer.errors import UserInputError  # noqa: E402

TEXTS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=0, max_size=40
)
LABELS = st.one_of(
    st.sampled_from(["positive", "negative", "neutral"]),
    st.integers(min_value=-2, max_value=5).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.sampled_from(["a;b", "b;c", "", " ", "0", "1", "inf"]),
    TEXTS,
)
HEADERS = st.sampled_from([("text", "label"), ("sentence", "label"), ("text", "labels"), ("review", "stars")])
ROWS = st.lists(st.tuples(TEXTS, LABELS), min_size=0, max_size=25)
# A new file name per example: datasets caches what it read by file, and a rewritten file of the same size
# within the same second could be served from that cache.
NAMES = (f"train{index}" for index in itertools.count())


def write_delimited(path: Path, header: tuple[str, str], rows: list[tuple[str, str]], delimiter: str, quoting: int):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, escapechar="\\", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def write_jsonl(path: Path, header: tuple[str, str], rows: list[tuple[str, str]], numbers: bool) -> None:
    def value(label: str):
        if numbers:
            try:
                number = float(label)
                return number if math.isfinite(number) else label
            except ValueError:
                return label
        return label

    lines = [json.dumps({header[0]: text, header[1]: value(label)}) for text, label in rows]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


def loads_or_refuses(path: Path) -> None:
    try:
        result = load_data(DataArguments(train_file=str(path)), seed=0)
    except UserInputError as error:
        assert str(error).strip(), "an empty error message"
        return
    assert isinstance(result, PreparedData)
    assert len(result.splits["train"]) > 0


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=HEADERS,
    rows=ROWS,
    delimiter=st.sampled_from([",", "\t", ";", "|"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONE]),
    suffix=st.sampled_from([".csv", ".tsv"]),
)
def test_delimited_files_load_or_raise_the_packages_error(
    tmp_path: Path, header, rows, delimiter: str, quoting: int, suffix: str
) -> None:
    path = tmp_path / f"{next(NAMES)}{suffix}"
    try:
        write_delimited(path, header, rows, delimiter, quoting)
    except csv.Error:
        return  # the csv module cannot write these rows without quoting: no file a user could have
    loads_or_refuses(path)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=HEADERS, rows=ROWS, numbers=st.booleans())
def test_jsonl_files_load_or_raise_the_packages_error(tmp_path: Path, header, rows, numbers: bool) -> None:
    path = tmp_path / f"{next(NAMES)}.jsonl"
    write_jsonl(path, header, rows, numbers)
    loads_or_refuses(path)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(min_size=0, max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".json"]))
def test_arbitrary_bytes_load_or_raise_the_packages_error(tmp_path: Path, raw: bytes, suffix: str) -> None:
    path = tmp_path / f"{next(NAMES)}{suffix}"
    path.write_bytes(raw)
    loads_or_refuses(path)
