"""Checks of data files and labels that the readers either accept silently or report without a line number.

`data` calls these around `datasets.load_dataset`: the cheap layout checks before reading (a folder, a TSV
named .csv, a .json holding one object), the diagnosis of a failed read (the first line that does not decode,
an unterminated quote, a row with too many fields, a malformed JSON line), and the label checks that would
otherwise train on silently wrong classes (inf targets, integers mixed with names, joined multi-labels) or
overstate the scores (texts in train and validation). The diagnosis reads the file again only after a read
failed, so good files pay nothing for it.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nlp_transfer.errors import UserInputError

logger = logging.getLogger(__name__)

ROWS_SHOWN = 5
TEXT_SHOWN = 60
DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
SEPARATOR_NAMES = {",": "comma", "\t": "tab"}
LABEL_SEPARATORS = (";", "|", ",")
MANY_COMBINATIONS = 5
"""Distinct joined values, each made only of labels seen on their own (or in other joined values), above which
a label column reads as multi-label data even when most rows hold a single label (GoEmotions: 17% of rows)."""
INTEGER = re.compile(r"[+-]?\d+")


def row_list(rows: Sequence[int]) -> str:
    """'1, 3, 5 and 2 more': the first row numbers of a problem and how many more there are."""
    shown = ", ".join(str(r) for r in rows[:ROWS_SHOWN])
    return shown + (f" and {len(rows) - ROWS_SHOWN} more" if len(rows) > ROWS_SHOWN else "")


def is_empty_text(value: Any) -> bool:
    """A missing text (None, NaN) or one of only whitespace: the rule every reader of texts applies."""
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


def refuse_empty_texts(texts: Sequence[Any], rows: Sequence[int], source: str, column: str | None = None) -> None:
    """Texts that are empty or only whitespace, in a file's `column` or given one by one (`column` None): a model
    would answer them with a confident label about nothing, so they are refused in both, by the same rule."""
    empty = [r for r, t in zip(rows, texts) if is_empty_text(t)]
    if not empty:
        return
    some = "an empty text" if len(empty) == 1 else f"{len(empty)} empty texts"
    if column is not None:
        raise UserInputError(
            f"{source} has {some} (empty or only spaces) in column '{column}' (row{'s' if len(empty) > 1 else ''} "
            f"{row_list(empty)}, counted from 1 after the header): it would get a label about nothing. Fix or "
            "remove those rows."
        )
    raise UserInputError(
        f"{source} holds {some} (empty or only spaces; number {row_list(empty)} of the {len(texts)} given): it "
        "would get a label about nothing. Give texts with words in them."
    )


def refuse_nested_labels(values: Sequence[Any], rows: Sequence[int], source: str, label: str) -> None:
    """A label that is a JSON object (or a list holding objects or lists) names no class: refuse it by row before
    the label code counts it (an object cannot be counted: it was a traceback)."""
    bad = [
        i
        for i, v in enumerate(values)
        if isinstance(v, dict) or (isinstance(v, (list, tuple)) and any(isinstance(x, (dict, list, tuple)) for x in v))
    ]
    if bad:
        example = json.dumps(values[bad[0]], default=str, ensure_ascii=False)
        example = example if len(example) <= TEXT_SHOWN else example[: TEXT_SHOWN - 3] + "..."
        where = f"{len(bad)} rows (rows {row_list([rows[i] for i in bad])}; " if len(bad) > 1 else "1 row ("
        raise UserInputError(
            f"Column '{label}' of {source} holds a JSON object or nested list instead of a label in {where}e.g. "
            f"{example} in row {rows[bad[0]]}). A label is a name, a number, or for multi-label data a list of "
            "names: fix those rows, or name the label column with --label-column."
        )


def check_encoding_name(encoding: str) -> None:
    """An unknown --encoding is refused before any file is opened."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise UserInputError(
            f"--encoding {encoding!r} is not a text encoding Python knows. Use e.g. utf-8 (the default), latin-1 or "
            "cp1252."
        ) from None


# ------------------------------------------------------------------------------- before reading


def check_path(path: Path) -> None:
    """The data path names an existing file: a folder or a missing path is named as such."""
    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in DATA_SUFFIXES)
        inside = f" It holds: {', '.join(found[:ROWS_SHOWN])}." if found else " It holds no data file."
        raise UserInputError(
            f"Data file {path} is a folder, not a file. Give one data file ({', '.join(DATA_SUFFIXES)}).{inside}"
        )
    if path.exists() and not path.is_file():  # a named pipe, a socket, a device: never opened (a pipe blocks)
        raise UserInputError(
            f"Data file {path} is not a regular file (a named pipe, socket or device): the data is read more than "
            "once, which a stream cannot give. Save it to a file first, e.g. cat PIPE > data.csv, and give that."
        )
    if not path.is_file():
        raise UserInputError(f"Data file {path} does not exist. Check the path (relative to {Path.cwd()}).")


def check_layout(path: Path, suffix: str, encoding: str) -> None:
    """Layouts the readers accept but read wrongly: a TSV named .csv (or the reverse), a .json with one object."""
    if suffix in (".csv", ".tsv"):
        _check_delimiter(path, suffix, encoding)
    elif suffix == ".json":
        _check_json_records(path, encoding)


def _first_line(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, errors="replace") as handle:
        return next((line for line in handle if line.strip()), "").lstrip("\ufeff").rstrip("\r\n")


def _check_delimiter(path: Path, suffix: str, encoding: str) -> None:
    header = _first_line(path, encoding)
    _refuse_repeated_columns(path, header, "\t" if suffix == ".tsv" else ",")
    if suffix == ".csv" and "\t" in header and "," not in header:
        raise UserInputError(
            f"{path} looks tab-separated: its header {header.replace(chr(9), '<TAB>')!r} has tabs and no commas, "
            "but a .csv file is read as comma-separated. Rename it to .tsv (read as tab-separated)."
        )
    if suffix == ".tsv" and "," in header and "\t" not in header:
        raise UserInputError(
            f"{path} looks comma-separated: its header {header!r} has commas and no tabs, but a .tsv file is read "
            "as tab-separated. Rename it to .csv."
        )


def _refuse_repeated_columns(path: Path, header: str, separator: str) -> None:
    """A header naming a column twice: the reader renames or drops one copy, and the wrong one may be used."""
    names = [name.strip() for name in next(csv.reader([header], delimiter=separator), [])]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        where = ", ".join(
            f"'{name}' (columns {', '.join(str(i + 1) for i, n in enumerate(names) if n == name)})" for name in repeated
        )
        raise UserInputError(
            f"The header of {path} names a column more than once: {where}. Only one copy would be read, silently. "
            "Give each column its own name (e.g. text, text_2) and choose with --text-column / --label-column."
        )


def _check_json_records(path: Path, encoding: str) -> None:
    """A .json file is an array of records or JSON lines; one object (records under a key, columns of lists)
    would otherwise be read as a single row. Parses the whole file only when its first line opens an object
    that does not close on that line, or when the file has a single line."""
    head = _first_line(path, encoding).strip()
    if not head.startswith("{"):
        return
    try:
        json.loads(head)
    except json.JSONDecodeError:
        pass  # the first object spans several lines: is the whole file that one object?
    else:
        with open(path, encoding=encoding, errors="replace") as handle:
            if sum(1 for line in handle if line.strip()) > 1:
                return  # JSON lines
    try:
        value = json.loads(path.read_text(encoding=encoding, errors="replace").lstrip("\ufeff"))
    except json.JSONDecodeError:
        return  # several objects, or broken JSON: the reader or its diagnosis says which
    if isinstance(value, dict):
        _refuse_single_object(path, value)


def _refuse_single_object(path: Path, value: dict[str, Any]) -> None:
    keys = ", ".join(map(repr, list(value)[:ROWS_SHOWN])) + (" ..." if len(value) > ROWS_SHOWN else "")
    records = [k for k, v in value.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
    lists = [v for v in value.values() if isinstance(v, list)]
    if records:
        detail = f"; the records seem to be the list under the key {records[0]!r}"
    elif value and len(lists) == len(value) and len({len(v) for v in lists}) == 1:
        detail = ", with columns as lists of values"
    else:
        detail = ""
    raise UserInputError(
        f"{path} holds one JSON object (keys {keys}){detail}, not an array of records or JSON lines, so it would "
        'be read as a single row. Save the examples as an array of records, [{"text": "...", "label": "..."}, '
        "...], or as a .jsonl file with one such object per line."
    )


# -------------------------------------------------------------------------------- after a failed read


def describe_read_error(path: Path, suffix: str, encoding: str) -> str | None:
    """Why `path` could not be read, naming the line; None when none of the known problems is found."""
    if suffix == ".parquet":
        return _parquet_problem(path)
    problem = _undecodable_line(path, encoding)
    if problem is None and suffix in (".csv", ".tsv"):
        problem = csv_structure_problem(path, "\t" if suffix == ".tsv" else ",", encoding)
    if problem is None and suffix in (".json", ".jsonl"):
        problem = _json_problem(path, encoding)
    return problem


def _parquet_problem(path: Path) -> str | None:
    """A .parquet file without Parquet's 'PAR1' marker at both ends: another format, or a file cut short."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(max(size - 4, 0))
        tail = handle.read(4)
    if head == b"PAR1" and tail == b"PAR1":
        return None
    what = "is cut short (it does not end" if head == b"PAR1" else "is not a Parquet file (it does not start"
    return (
        f"{path} {what} with Parquet's 'PAR1' marker). If it holds CSV or JSON, give it that suffix (.csv, .tsv, "
        ".json, .jsonl); otherwise write it again as Parquet, e.g. with pandas' DataFrame.to_parquet."
    )


def _undecodable_line(path: Path, encoding: str) -> str | None:
    """The first line (1-based) that `encoding` cannot decode, as a message with the advice; None if all decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    number = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as error:
                return _encoding_message(path, encoding, number, error)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        return _encoding_message(path, encoding, number, error)
    return None


def _encoding_message(path: Path, encoding: str, number: int, error: UnicodeDecodeError) -> str:
    bad = " ".join(f"0x{byte:02x}" for byte in error.object[error.start : error.end][:4])
    with open(path, "rb") as handle:
        utf16 = handle.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    hint = (
        "It starts with a UTF-16 byte-order mark: pass --encoding utf-16, or re-save it as UTF-8."
        if utf16
        else "It was probably saved in another encoding (Latin-1 or Windows-1252 by older spreadsheet programs): "
        "re-save it as UTF-8, or pass the encoding it was saved in, e.g. --encoding latin-1 (or cp1252)."
    )
    return (
        f"{path} is not valid {encoding} text: line {number} has the byte(s) {bad}, which {encoding} cannot "
        f"decode. {hint}"
    )


def csv_structure_problem(path: Path, separator: str, encoding: str) -> str | None:
    """An unterminated quote or rows with more fields than the header, by line number (header = line 1)."""
    name = SEPARATOR_NAMES.get(separator, repr(separator))
    with open(path, newline="", encoding=encoding, errors="replace") as handle:
        reader = csv.reader(handle, delimiter=separator, strict=True)
        header: list[str] | None = None
        long_rows: list[tuple[int, int]] = []
        start = 1
        try:
            for fields in reader:
                if header is None and fields:
                    header = fields
                elif header is not None and len(fields) > len(header):
                    long_rows.append((start, len(fields)))
                start = reader.line_num + 1
        except csv.Error as error:
            if "end of data" in str(error):
                return (
                    f"{path} has an unterminated quote: the field that starts on line {start} opens a '\"' that is "
                    "never closed, so the rest of the file would be read as one value. Close the quote (a quote "
                    'inside a quoted text is written twice: "") or remove it.'
                )
            return f"{path} has a quoting problem on line {start}: {error}. Fix that line."
    if not long_rows or header is None:
        return None
    lines = ", ".join(f"line {line} has {count}" for line, count in long_rows[:ROWS_SHOWN])
    more = f" and {len(long_rows) - ROWS_SHOWN} more" if len(long_rows) > ROWS_SHOWN else ""
    return (
        f"{path} has {len(long_rows)} row{'s' if len(long_rows) > 1 else ''} with more fields than its header's "
        f"{len(header)} "
        f"({', '.join(header)}): {lines}{more} (line 1 is the header). A {name} inside a text must be in quotes "
        f'("like{separator} this"); fix those lines, or save the file with a spreadsheet or a CSV writer.'
    )


def _json_problem(path: Path, encoding: str) -> str | None:
    text_start = _first_line(path, encoding).lstrip()
    if text_start.startswith("["):
        try:
            json.loads(path.read_text(encoding=encoding, errors="replace").lstrip("\ufeff"))
        except json.JSONDecodeError as error:
            return f"{path} is not valid JSON: line {error.lineno}, column {error.colno}: {error.msg}. Fix it there."
        return None
    with open(path, encoding=encoding, errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line.lstrip("\ufeff"))
            except json.JSONDecodeError as error:
                return (
                    f"{path} has a malformed JSON line: line {number} is not valid JSON ({error.msg} at column "
                    f'{error.colno}). Each line must be one complete JSON object, e.g. {{"text": "...", "label": '
                    '"..."}; fix that line.'
                )
            if not isinstance(value, dict):
                return (
                    f"{path} line {number} holds a JSON {type(value).__name__}, not an object; each line must be "
                    'one JSON object, e.g. {"text": "...", "label": "..."}.'
                )
    return None


# ------------------------------------------------------------------------------------------ labels


def refuse_non_finite(values: Sequence[float], rows: Sequence[int], source: str, label: str) -> None:
    """inf, -inf and NaN regression targets make the loss and every metric NaN: refuse them by row."""
    array = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        shown = ", ".join(f"{float(array[i])} in row {rows[i]}" for i in bad[:ROWS_SHOWN])
        raise UserInputError(
            f"Regression labels must be finite numbers, but {source} has {bad.size} rows with an infinite or NaN "
            f"value in column '{label}' ({shown}{' ...' if bad.size > ROWS_SHOWN else ''}). Fix or remove those rows."
        )


def refuse_mixed_label_kinds(keys: Sequence[Any], rows: Sequence[int], source: str, label: str) -> None:
    """Integer labels beside label names (0, 1, 'positive') would make the id and the name of one class two
    classes: refuse, naming an example of each kind."""
    counts: Counter[bool] = Counter()
    first: dict[bool, Any] = {}
    for key, count in Counter(keys).items():
        kind = isinstance(key, int) or (isinstance(key, str) and INTEGER.fullmatch(key) is not None)
        counts[kind] += count
        first.setdefault(kind, key)
    if len(counts) < 2:
        return
    integer, name = first[True], first[False]
    integer_row, name_row = rows[list(keys).index(integer)], rows[list(keys).index(name)]
    raise UserInputError(
        f"Column '{label}' of {source} mixes integer labels and label names: {counts[True]} rows hold integers "
        f"(e.g. {str(integer)!r} in row {integer_row}) and {counts[False]} rows hold names (e.g. {name!r} in row "
        f"{name_row}), so a class id and a class name would be trained as two classes. Use one kind throughout: "
        "names in every row, or integer class ids in every row (named with --class-names)."
    )


def refuse_joined_labels(values: Sequence[Any], rows: Sequence[int], source: str, label: str) -> None:
    """Cells such as 'joy;love' read as single labels would train every combination as its own class.

    A separator counts when its joined cells are made of labels: either more than half of the rows hold joined
    cells whose parts are labels on their own or occur in two joined cells, or MANY_COMBINATIONS distinct
    joined cells consist of labels that also occur on their own (GoEmotions: 17% of rows, 118 combinations).
    A few names with a separator in them ('Washington, D.C.', 'Austen, Jane') do not count. In a small file one
    joined cell with a part that is a label on its own counts (every part, for a comma).
    """
    counts = Counter(v.strip() for v in values if isinstance(v, str))
    total = sum(counts.values())
    for separator in LABEL_SEPARATORS if total else ():
        of_alone, of_known = _joined_values(counts, separator)
        if 2 * sum(counts[v] for v in of_known) > total or len(of_alone) >= MANY_COMBINATIONS:
            _refuse_joined(values, rows, source, label, counts, separator, of_known)
        # A small file: one joined cell whose parts are labels seen alone is enough ('billing' and
        # 'billing;delivery'). A comma also joins parts of names ('Paris' beside 'Paris, Texas'): there every part
        # must be a label of its own.
        evidence = of_alone if separator == "," else _with_a_label_alone(counts, separator)
        if evidence:
            _refuse_joined(values, rows, source, label, counts, separator, evidence)


def _refuse_joined(
    values: Sequence[Any],
    rows: Sequence[int],
    source: str,
    label: str,
    counts: Counter,
    separator: str,
    joined: list[str],
) -> None:
    containing = sum(count for value, count in counts.items() if separator in value)
    example = max(joined, key=lambda v: counts[v])
    example_row = rows[next(i for i, v in enumerate(values) if isinstance(v, str) and v.strip() == example)]
    raise UserInputError(
        f"Column '{label}' of {source} looks like multi-label data, several labels joined by {separator!r}: "
        f"{containing} of {sum(counts.values())} rows contain {separator!r}, in {len(joined)} distinct "
        f"combination{'s' if len(joined) > 1 else ''} "
        f"of labels (e.g. {example!r} in row {example_row}), and without a separator each combination would be "
        f"trained as a class of its own ({len(counts)} classes). For multi-label classification pass "
        f"--label-separator '{separator}'; to keep each combination as one class, pass --task single_label."
    )


def _with_a_label_alone(counts: Counter, separator: str) -> list[str]:
    """Distinct values joined by `separator` of which at least one part is also a label on its own."""
    alone = {v for v in counts if separator not in v}
    joined = {v: [p.strip() for p in v.split(separator) if p.strip()] for v in counts if separator in v}
    return [v for v, parts in joined.items() if len(parts) > 1 and any(p in alone for p in parts)]


def _joined_values(counts: Counter, separator: str) -> tuple[list[str], list[str]]:
    """Distinct values joined by `separator` whose parts are all labels: (`of_alone`) parts that are labels on
    their own, and (`of_known`) parts that are labels on their own or occur in two joined values."""
    joined = [v for v in counts if separator in v]
    parts = {v: [p.strip() for p in v.split(separator) if p.strip()] for v in joined}
    seen_in = Counter(p for v in joined for p in set(parts[v]))
    alone = {v for v in counts if separator not in v}
    joined = [v for v in joined if len(parts[v]) > 1]
    of_alone = [v for v in joined if all(p in alone for p in parts[v])]
    of_known = [v for v in joined if all(p in alone or seen_in[p] > 1 for p in parts[v])]
    return of_alone, of_known


# ------------------------------------------------------------------------------------------ splits


def text_keys(texts: Sequence[Any], pairs: Sequence[Any] | None = None) -> list[str]:
    """One string per row to compare rows by: the text, or the text and its pair joined by a unit separator."""
    first = pd.Series(texts, dtype=object).astype(str)
    if pairs is None:
        return first.tolist()
    return (first + "\x1f" + pd.Series(pairs, dtype=object).astype(str)).tolist()


def warn_shared_texts(
    train_keys: Sequence[str], other_keys: Sequence[str], rows: Sequence[int], role: str, source: str
) -> int:
    """Count (and warn about) rows of another split whose text is also a training text; returns the count."""
    shared = pd.Series(other_keys, dtype=object).isin(pd.Series(train_keys, dtype=object)).to_numpy()
    count = int(shared.sum())
    if count:
        first = int(np.argmax(shared))
        logger.warning(
            "%d %s %s in train (e.g. %s, row %d of %s): the %s scores overstate how the model does on new text. "
            "Remove them from one of the two.",
            count,
            role,
            "text also appears" if count == 1 else "texts also appear",
            _shown(other_keys[first]),
            rows[first],
            source,
            role,
        )
    return count


def warn_conflicting_labels(keys: Sequence[str], labels: Sequence[Any], rows: Sequence[int], source: str) -> int:
    """Count (and warn about) training texts that occur with different labels; returns the count of texts."""
    if len(labels) and isinstance(labels[0], list):  # multi-hot rows: tuples, which hash
        labels = [tuple(v) for v in labels]
    frame = pd.DataFrame({"text": keys, "label": labels})
    per_text = frame.drop_duplicates()["text"].value_counts()
    conflicting = per_text[per_text > 1]
    if conflicting.empty:
        return 0
    texts = frame["text"]
    example = texts.iloc[int(np.argmax(texts.isin(conflicting.index).to_numpy()))]  # the first in file order
    example_rows = [rows[i] for i in np.flatnonzero(texts.to_numpy() == example)]
    logger.warning(
        "%d %s in the training data (%s) with different labels (e.g. %s in rows %s): the model is taught both "
        "answers. Fix the labels or remove the duplicates.",
        len(conflicting),
        "text appears" if len(conflicting) == 1 else "texts appear",
        source,
        _shown(example),
        row_list(example_rows),
    )
    return len(conflicting)


def _shown(text: str) -> str:
    text = text.replace("\x1f", " | ")
    return repr(text if len(text) <= TEXT_SHOWN else text[: TEXT_SHOWN - 3] + "...")
