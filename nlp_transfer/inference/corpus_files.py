"""A corpus file read in chunks of rows, with pyarrow's streaming readers, so memory stays flat whatever its size.

CSV and TSV are read with every column as text (an id `007` stays `007`, an empty field stays empty, `NA` stays
the text `NA`); JSON Lines with pyarrow's JSON reader; Parquet one record batch at a time. The chunks have a fixed
number of rows, so the same file always cuts into the same chunks: what makes a resumed run equal a whole one.
JSON Lines are parsed line by line by Python's `json` (pyarrow's JSON reader types each column from the first
block and refuses a file where a value's type changes later, or a key first appears late: both are valid JSON
Lines). A JSON array (`[{...}, ...]`) cannot be read a chunk at a time: such a file is read by `datasets` (as
training reads it, through a memory-mapped Arrow copy) and then cut into the same chunks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from nlp_transfer.data.checks import check_encoding_name, check_layout, check_path, describe_read_error
from nlp_transfer.errors import UserInputError

logger = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
BLOCK_BYTES = 1 << 22
"""Bytes per block of the CSV and JSON readers: a few thousand rows of short texts."""
COUNT_BYTES = 1 << 24


@dataclass(frozen=True)
class CorpusFile:
    """One input file: its path, format (from its suffix) and text encoding."""

    path: Path
    format: str
    encoding: str = "utf-8"

    @classmethod
    def open(cls, path: str | Path, encoding: str = "utf-8") -> CorpusFile:
        """The file checked as training checks its files (exists, known type, layout, encoding name)."""
        path = Path(path).expanduser()
        check_path(path)
        check_encoding_name(encoding)
        suffix = path.suffix.lower()
        if suffix not in FORMATS:
            raise UserInputError(f"{path} has the unsupported type '{suffix}'. Use one of: {', '.join(FORMATS)}.")
        if FORMATS[suffix] != "parquet":
            check_layout(path, suffix, encoding)
        return cls(path, FORMATS[suffix], encoding)

    @property
    def streamed(self) -> bool:
        """False for a JSON array, which cannot be read a chunk at a time: `datasets` reads it."""
        return self.format != "json" or self._first_character() != "["

    def _first_character(self) -> str:
        with open(self.path, "rb") as handle:
            return handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1].decode("ascii", "replace")

    def estimated_rows(self) -> int | None:
        """Rows for the progress bar: exact for Parquet, the count of non-empty lines for CSV/TSV/JSON Lines (a
        text with line breaks inside quotes makes it an overestimate)."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).metadata.num_rows
        if not self.streamed:
            return None
        lines, last = 0, b"\n"
        with open(self.path, "rb") as handle:
            while block := handle.read(COUNT_BYTES):
                lines += block.count(b"\n")
                last = block[-1:]
        lines += last != b"\n"
        return max(lines - (self.format in ("csv", "tsv")), 0)

    def chunks(self, rows: int) -> Iterator[pa.Table]:
        """The file's rows as tables of `rows` rows each (the last one shorter); a read error names the file and,
        where it can be found, the line."""
        try:
            yield from rebatch(self._batches(), rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, ValueError) as error:
            problem = describe_read_error(self.path, self.path.suffix.lower(), self.encoding)
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserInputError(problem or f"Could not read {self.path} as {self.format}: {first}") from None

    def _batches(self) -> Iterator[pa.RecordBatch]:
        if self.format in ("csv", "tsv"):
            return _csv_batches(self.path, "\t" if self.format == "tsv" else ",", self.encoding)
        if self.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).iter_batches(batch_size=1 << 14)
        if self.streamed:
            return _json_line_batches(self.path, self.encoding)
        return self._through_datasets()

    def _through_datasets(self) -> Iterator[pa.RecordBatch]:
        from nlp_transfer.data.columns import ROW_COLUMN
        from nlp_transfer.data.reading import _read_file

        logger.info("%s is a JSON array, not JSON Lines, so it is read whole (by datasets) first.", self.path)
        dataset = _read_file(str(self.path), "prediction", self.encoding).remove_columns(ROW_COLUMN)
        for table in dataset.with_format("arrow").iter(batch_size=1 << 14):
            yield from table.to_batches()


def _csv_batches(path: Path, delimiter: str, encoding: str) -> Iterator[pa.RecordBatch]:
    """Every column as text: the header is read first, to name the columns' types."""
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(encoding=encoding, block_size=BLOCK_BYTES)
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    names = pacsv.open_csv(path, read_options=read, parse_options=parse).schema.names
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    return iter(pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert))


def _json_line_batches(path: Path, encoding: str, rows: int = 1 << 12) -> Iterator[pa.RecordBatch]:
    """JSON Lines, one object per line (blank lines skipped); a key missing from a line is null there. Values that
    are not text (numbers, lists) are kept as their JSON, so every chunk has the same column types."""
    names: dict[str, None] = {}
    records: list[dict] = []
    with open(path, encoding=encoding) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            records.append(_json_record(line, number, path))
            names.update(dict.fromkeys(records[-1]))
            if len(records) == rows:
                yield _json_batch(records, names)
                records = []
    if records:
        yield _json_batch(records, names)


def _json_record(line: str, number: int, path: Path) -> dict:
    try:
        record = json.loads(line)
    except ValueError as error:
        raise UserInputError(
            f"Line {number} of {path} is not valid JSON ({error.msg.removesuffix(' at')} at column {error.colno}). "
            "Fix that line."
        ) from None
    if not isinstance(record, dict):
        raise UserInputError(
            f"Line {number} of {path} holds a JSON {type(record).__name__}, not an object: JSON Lines hold one "
            'object per line, e.g. {"text": "...", "id": 1}.'
        )
    return record


def _json_batch(records: list[dict], names: dict[str, None]) -> pa.RecordBatch:
    def text(value: object) -> str | None:
        return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return pa.RecordBatch.from_pydict(
        {name: pa.array([text(record.get(name)) for record in records], pa.string()) for name in names}
    )


def rebatch(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Record batches of any sizes -> tables of exactly `rows` rows (the last one shorter)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            batch, count = batch.slice(take), count + take
            if count == rows:
                yield _table(pending)
                pending, count = [], 0
    if pending:
        yield _table(pending)


def _table(batches: list[pa.RecordBatch]) -> pa.Table:
    """One table of the batches; a column that first appears in a later batch (a JSON key) is null before it."""
    if all(batch.schema == batches[0].schema for batch in batches):
        return pa.Table.from_batches(batches)
    return pa.concat_tables([pa.Table.from_batches([batch]) for batch in batches], promote_options="default")
