"""What a distillation reads: the teacher (a LoRA teacher merged first), its training and validation files as its
run recorded them, and the transfer texts (labelled rows of --train-file, unlabelled lines of --text-file)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlp_transfer.data.checks import is_empty_text
from nlp_transfer.data.columns import find_text_columns
from nlp_transfer.data.labels import LabelSchema
from nlp_transfer.data.reading import read_labelled
from nlp_transfer.errors import UserInputError
from nlp_transfer.inference.corpus_files import CorpusFile
from nlp_transfer.inference.onnx_runtime import OnnxSequenceClassifier
from nlp_transfer.inference.predict import Classifier, load_classifier
from nlp_transfer.settings import PackageSettings
from nlp_transfer.tasks import REGRESSION

logger = logging.getLogger(__name__)

CHUNK_ROWS = 8192


def load_teacher(folder: str, device: str = "cpu") -> Classifier:
    """The trained classifier to distil, as `load_classifier` reads it; a LoRA adapter merged into its base."""
    teacher = load_classifier(folder, device=device)
    if isinstance(teacher.model, OnnxSequenceClassifier):
        raise UserInputError(
            f"--teacher {folder} is an ONNX export; distil the folder 'nlp-transfer train' wrote (export the student)."
        )
    if hasattr(teacher.model, "merge_and_unload"):
        teacher.model = teacher.model.merge_and_unload()  # a student is cut from plain weights
    teacher.model.eval()
    return teacher


def label_schema(teacher: Classifier) -> LabelSchema:
    return LabelSchema(teacher.task, [] if teacher.task == REGRESSION else teacher.labels)


@dataclass
class LabelledRows:
    """A labelled file read against the teacher's labels."""

    file: str
    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray


def read_rows(
    path: str,
    teacher: Classifier,
    text_column: str | None,
    pair_column: str | None,
    label_column: str | None,
    encoding: str = "utf-8",
) -> LabelledRows:
    """A labelled file, its labels mapped onto the teacher's (an unknown label is refused naming its rows)."""
    separator = PackageSettings.read(teacher.model).label_separator
    data = read_labelled(path, label_schema(teacher), text_column, pair_column, label_column, separator, encoding)
    return LabelledRows(path, data.texts, data.pairs, data.labels)


def read_unlabelled(
    path: str, text_column: str | None, pair_column: str | None, encoding: str = "utf-8"
) -> tuple[list[str], list[str] | None]:
    """The non-empty texts of --text-file: a .txt file's lines, or a column of a CSV/TSV/JSON(L)/Parquet file."""
    file = Path(path).expanduser()
    if file.suffix.lower() == ".txt":
        if pair_column:
            raise UserInputError(
                f"--text-file {path} is plain text: a sentence-pair teacher needs a CSV with both "
                "text columns (--text-column, --text-pair-column)."
            )
        if not file.is_file():
            raise UserInputError(f"--text-file {path} does not exist.")
        texts = [line.strip() for line in file.read_text(encoding=encoding).splitlines()]
        texts = [text for text in texts if text]
        pairs = None
    else:
        texts, pairs = _column_texts(CorpusFile.open(file, encoding), text_column, pair_column)
    if not texts:
        raise UserInputError(f"--text-file {path} holds no texts.")
    return texts, pairs if pair_column else None


def _column_texts(corpus: CorpusFile, text_column: str | None, pair_column: str | None) -> tuple[list[str], list[str]]:
    """The non-empty texts (and second texts) of a table file, its text column found as training finds it."""
    texts: list[str] = []
    pairs: list[str] = []
    column = None
    for table in corpus.chunks(CHUNK_ROWS):
        if column is None:  # one header for the whole file: resolved on the first chunk
            source, names = f"--text-file {corpus.path}", table.column_names
            column, _ = find_text_columns(source, names, text_column, pair_column, pairs=pair_column is not None)
        values = table.column(column).to_pylist()
        seconds = table.column(pair_column).to_pylist() if pair_column else [""] * len(values)
        for first, second in zip(values, seconds):
            if not is_empty_text(first) and not (pair_column and is_empty_text(second)):
                texts.append(str(first))
                pairs.append(str(second))
    return texts, pairs
