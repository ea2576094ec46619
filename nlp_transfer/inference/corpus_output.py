"""A corpus's predictions written chunk by chunk, resumable, and renamed into place only when complete.

Each chunk's rows go to their own part file in a hidden folder beside the output (`.NAME.partial/`), written
through a temporary name and renamed, so a part is whole or absent. `state.json` there records what the run
reads and how (input file, its size and time, the options): `--resume` continues only the same run. When every
chunk is written, the parts are joined (one at a time: memory stays flat) into a hidden file that is renamed to
the output, and the folder is removed. The output's format follows its extension: `.csv`, `.tsv`, `.parquet`,
anything else JSON Lines.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from nlp_transfer.errors import UserInputError

STATE_FILE = "state.json"
OUTPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


def output_format(path: Path) -> str:
    return OUTPUT_FORMATS.get(path.suffix.lower(), "jsonl")


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


def encode_part(table: pa.Table, records: list[dict[str, Any]], form: str, fields: Sequence[str]) -> bytes:
    """One chunk's rows in the output's format: `table` for Parquet (typed columns), `records` for JSON Lines, and
    `records` laid out as `fields` (a missing field an empty cell) for CSV/TSV."""
    if form == "parquet":
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()
    if form == "jsonl":
        return "".join(json_line(record) for record in records).encode("utf-8")
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t" if form == "tsv" else ",", lineterminator="\n")
    writer.writerows([_cell(record.get(name)) for name in fields] for record in records)
    return text.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    """A CSV cell: lists and mappings (scores, label sets) as JSON, a missing value as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


class PartialOutput:
    """The hidden folder of a run's finished chunks, beside its output file."""

    def __init__(self, output: Path, fingerprint: dict[str, Any]) -> None:
        self.output = output
        self.folder = output.parent / f".{output.name}.partial"
        self.fingerprint = fingerprint

    def start(self, resume: bool) -> int:
        """Chunks already written (0 for a new run); refuses a stray partial without --resume and a resume of a
        different run."""
        if self.output.is_dir():
            raise UserInputError(f"--output {self.output} is a folder; give a file name, e.g. predictions.jsonl.")
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            (self.folder / STATE_FILE).write_text(json.dumps(self.fingerprint, indent=2), encoding="utf-8")
            return 0
        written = self.written()
        if not resume:
            raise UserInputError(
                f"{self.folder} holds the predictions of an interrupted run ({written} chunks written). Add --resume "
                f"to continue it, or delete that folder to start over."
            )
        self._check_same_run()
        return written

    def _check_same_run(self) -> None:
        try:
            saved = json.loads((self.folder / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        changed = sorted(key for key in {*saved, *self.fingerprint} if saved.get(key) != self.fingerprint.get(key))
        if changed:
            found = [_difference(key, saved.get(key), self.fingerprint.get(key)) for key in changed]
            differences = "; ".join(dict.fromkeys(found))
            raise UserInputError(
                f"--resume: {self.folder} was started by a different run ({differences}), so its chunks would not "
                "join this one's. Run the same command as before plus --resume, or delete that folder to start over."
            )

    def written(self) -> int:
        """The number of consecutive parts from the first: a part after a gap is written again."""
        count = 0
        while self.part(count).is_file():
            count += 1
        return count

    def part(self, index: int) -> Path:
        return self.folder / f"part-{index:06d}"

    def write_part(self, index: int, data: bytes, summary: dict[str, Any]) -> None:
        """The part (and its summary: rows predicted, rows skipped) through temporary names; the part last, so a
        part that exists has its summary."""
        for path, content in ((self._summary(index), json.dumps(summary).encode("utf-8")), (self.part(index), data)):
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            partial.write_bytes(content)
            os.replace(partial, path)

    def summary(self, index: int) -> dict[str, Any]:
        """What an earlier run recorded of a part it wrote."""
        return json.loads(self._summary(index).read_text(encoding="utf-8"))

    def _summary(self, index: int) -> Path:
        return self.folder / f"part-{index:06d}.json"

    def discard(self) -> None:
        """Remove the folder: after a refusal of the input, its chunks would not join a corrected file's."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def finish(self, form: str, header: Sequence[str] | None) -> None:
        """Join the parts into the output (complete or absent) and remove the folder."""
        joined = self.output.parent / f".{self.output.name}.joining"
        join = _join_parquet if form == "parquet" else _join_text
        join([self.part(i) for i in range(self.written())], joined, form, header)
        os.replace(joined, self.output)
        shutil.rmtree(self.folder)


def _difference(key: str, then: Any, now: Any) -> str:
    """One difference between the interrupted run and this one, in the words of the command line."""
    if key.startswith("input"):
        return "the input file changed since"
    name = "the model folder" if key == "model" else "--" + key.replace("_", "-")
    return f"{name}: {then!r} then, {now!r} now"


def _join_text(parts: list[Path], target: Path, form: str, header: Sequence[str] | None) -> None:
    with open(target, "wb") as sink:
        if form in ("csv", "tsv") and header is not None:
            text = io.StringIO()
            csv.writer(text, delimiter="\t" if form == "tsv" else ",", lineterminator="\n").writerow(header)
            sink.write(text.getvalue().encode("utf-8"))
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, sink)


def _join_parquet(parts: list[Path], target: Path, form: str, header: Sequence[str] | None) -> None:
    import pyarrow.parquet as pq

    writer: pq.ParquetWriter | None = None
    try:
        for part in parts:
            table = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no rows at all: an empty file with no columns would not read back; none is written
        pq.write_table(pa.table({}), target)
