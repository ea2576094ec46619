"""`nlp-transfer distill`: a trained classifier (the teacher) taught to a cheaper one (the student).

The teacher labels the transfer texts (its own training rows by default, plus any unlabelled texts of the same
kind: more texts make a better student); the student is built (`students`), trained on those soft labels and the
true ones through Trainer (`training`), saved as a classifier folder like any other, reloaded and checked to
predict as it did in memory, then compared with the teacher on the same validation (and test) texts (`report`).
The output folder is complete or absent; the teacher's folder is only read.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from nlp_transfer.distill.card import write_card
from nlp_transfer.distill.report import (
    REPORT_FILE,
    DistillReport,
    compare_on,
    primary_metric,
    serving_cost,
)
from nlp_transfer.distill.sources import LabelledRows, load_teacher, read_rows, read_unlabelled
from nlp_transfer.distill.students import Student, StudentSpec, build_student
from nlp_transfer.distill.training import StudentTraining, TransferSet, placeholder_labels, train_student
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics.suite import metric_direction
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.folder_lock import folder_lock
from nlp_transfer.inference.predict import Classifier, load_classifier
from nlp_transfer.inference.run_files import recorded_file
from nlp_transfer.outputs import METRICS_FILE, check_output_dir, discard, publish, staging_dir, write_json
from nlp_transfer.settings import PackageSettings
from nlp_transfer.tasks import REGRESSION
from nlp_transfer.version import __version__

logger = logging.getLogger(__name__)

DEFAULTS = {"layers": {"epochs": 3.0, "learning_rate": 5e-5}, "static": {"epochs": 5.0, "learning_rate": 1e-3}}
"""Epochs and learning rate by student kind when not given: a cut transformer fine-tunes gently; fresh static
vectors and head move further (Model2Vec trains its classifiers at 1e-3)."""
RELOAD_ROWS = 256
LOGIT_TOLERANCE = 1e-4
TEACHER_CHUNK = 1024


@dataclass
class DistillOptions:
    """`nlp-transfer distill`'s options (see its --help)."""

    teacher: str
    student: str
    output_dir: str
    text_file: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    encoding: str = "utf-8"
    temperature: float = 2.0
    alpha: float = 0.5
    epochs: float | None = None
    learning_rate: float | None = None
    batch_size: int = 32
    seed: int = 42
    student_init: str = "teacher"
    pca_dims: int = 256
    head_hidden_size: int = 512
    bf16: bool = False
    overwrite_output_dir: bool = False
    quiet: bool = False

    def check(self) -> StudentSpec:
        spec = StudentSpec.parse(self.student)
        if self.temperature <= 0:
            raise UserInputError(f"--temperature must be above 0, not {self.temperature}.")
        if not 0.0 <= self.alpha <= 1.0:
            raise UserInputError(
                f"--alpha must be between 0 and 1 (the teacher's share of the loss), not {self.alpha}."
            )
        if self.alpha == 0 and self.text_file:
            raise UserInputError(
                "--alpha 0 trains on the true labels alone, so the unlabelled --text-file would teach "
                "nothing: drop it, or give --alpha above 0."
            )
        if self.student_init not in ("teacher", "base"):
            raise UserInputError(f"--student-init must be 'teacher' or 'base', not {self.student_init!r}.")
        for name in ("batch_size", "pca_dims"):
            if getattr(self, name) < 1:
                raise UserInputError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}.")
        for name in ("epochs", "learning_rate"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise UserInputError(f"--{name.replace('_', '-')} must be above 0, not {getattr(self, name)}.")
        if self.head_hidden_size < 0:
            raise UserInputError(f"--head-hidden-size must be 0 (a linear head) or more, not {self.head_hidden_size}.")
        return spec

    def training(self, spec: StudentSpec) -> StudentTraining:
        defaults = DEFAULTS[spec.kind]
        return StudentTraining(
            epochs=self.epochs if self.epochs is not None else defaults["epochs"],
            learning_rate=self.learning_rate if self.learning_rate is not None else defaults["learning_rate"],
            batch_size=self.batch_size,
            seed=self.seed,
            temperature=self.temperature,
            alpha=self.alpha,
            bf16=self.bf16,
            quiet=self.quiet,
        )


def distill(options: DistillOptions) -> DistillReport:
    """Train the student of `options.student` from `options.teacher`; write it to `options.output_dir`."""
    spec = options.check()
    inputs = {name: getattr(options, name) for name in ("teacher", "text_file", "train_file", "validation_file")}
    target = check_output_dir(options.output_dir, options.overwrite_output_dir, "the student", inputs)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    teacher = load_teacher(options.teacher, device)
    validation, test = _evaluation_files(options, teacher)
    if spec.kind == "static" and validation.pairs is not None:
        raise UserInputError("A static student reads single texts; this teacher reads text pairs. Use layers:K.")
    transfer, sources = _transfer_set(options, teacher)
    torch.manual_seed(options.seed)
    base = _base_model(options.teacher)
    student = build_student(
        spec, teacher, options.student_init, base, options.pca_dims, options.head_hidden_size, options.quiet
    )
    settings = options.training(spec)
    logger.info("Training the %s student on %d texts (%d labelled)", spec, len(transfer.texts), transfer.labelled_rows)
    with tempfile.TemporaryDirectory(prefix="nlp-transfer-distill-") as work:
        metrics = train_student(student, transfer, teacher.task, settings, Path(work))
    report = DistillReport(
        teacher=options.teacher,
        student=str(spec),
        method=student.method,
        primary_metric=primary_metric(teacher),
        transfer=sources,
        training={**settings.__dict__, "train_runtime_s": metrics.get("train_runtime")},
    )
    with folder_lock(target):
        staging = staging_dir(target)
        try:
            reloaded = _save_student(student, teacher, staging, validation)
            _compare(report, teacher, reloaded, staging, validation, test, options)
            write_json(staging / REPORT_FILE, report.to_dict())
            _write_record(staging, report, teacher, student, transfer)
            write_card(staging, report, teacher)
            publish(staging, target, command="distill", overwrite=options.overwrite_output_dir)
        except BaseException:
            discard(staging)
            raise
    return report


def _base_model(teacher: str) -> str | None:
    """The pretrained checkpoint the teacher was fine-tuned from, as its metrics.json names it."""
    folder = Path(teacher)
    return RunRecord.load(folder).base_model if (folder / METRICS_FILE).is_file() else None


def _evaluation_files(options: DistillOptions, teacher: Classifier) -> tuple[LabelledRows, LabelledRows | None]:
    """Validation (given, or the teacher's own) and test (given, or the teacher's when it had one), read now so
    that a bad file is refused before any training."""
    validation_file = options.validation_file or recorded_file(Path(options.teacher), "validation")
    if validation_file is None:
        raise UserInputError(
            f"The student is compared with its teacher on labelled texts, and the run of "
            f"{options.teacher} names no validation file that is still there. Give --validation-file."
        )
    test_file = options.test_file or recorded_file(Path(options.teacher), "test")
    read = [
        read_rows(name, teacher, options.text_column, options.text_pair_column, options.label_column, options.encoding)
        if name
        else None
        for name in (validation_file, test_file)
    ]
    return read[0], read[1]


def _transfer_set(options: DistillOptions, teacher: Classifier) -> tuple[TransferSet, dict[str, object]]:
    """The labelled training rows and the unlabelled texts, each with the teacher's logits."""
    train_file = options.train_file or recorded_file(Path(options.teacher), "train")
    if train_file is None and not options.text_file:
        raise UserInputError(
            f"The transfer texts default to the teacher's training file, and the run of "
            f"{options.teacher} names none that is still there. Give --train-file (labelled) and/or "
            "--text-file (unlabelled texts of the same kind)."
        )
    if train_file is None and options.alpha == 0:
        raise UserInputError("--alpha 0 trains on true labels alone: give them with --train-file.")
    num_labels = len(teacher.labels)
    parts = []  # (texts, pairs or None, labels, labelled) of each file
    if train_file:
        rows = read_rows(
            train_file, teacher, options.text_column, options.text_pair_column, options.label_column, options.encoding
        )
        parts.append((rows.texts, rows.pairs, rows.labels, np.ones(len(rows.texts), dtype=bool)))
    if options.text_file:
        extra, extra_pairs = read_unlabelled(
            options.text_file, options.text_column, options.text_pair_column, options.encoding
        )
        parts.append(
            (
                extra,
                extra_pairs,
                placeholder_labels(teacher.task, len(extra), num_labels),
                np.zeros(len(extra), dtype=bool),
            )
        )
    if len({part[1] is None for part in parts}) > 1:
        raise UserInputError(
            f"--train-file {train_file} and --text-file {options.text_file} must both hold single texts or both "
            "text pairs (name the second text's column with --text-pair-column)."
        )
    texts = [text for part in parts for text in part[0]]
    pairs = None if parts[0][1] is None else [pair for part in parts for pair in part[1]]
    labels = np.concatenate([part[2] for part in parts])
    labelled = np.concatenate([part[3] for part in parts])
    logits = _teacher_logits(teacher, texts, pairs, options.batch_size, options.quiet)
    sources = {
        "train_file": train_file,
        "text_file": options.text_file,
        "labelled_rows": int(labelled.sum()),
        "unlabelled_texts": int((~labelled).sum()),
    }
    return TransferSet(texts, pairs, logits, labels, labelled), sources


def _teacher_logits(
    teacher: Classifier, texts: list[str], pairs: list[str] | None, batch_size: int, quiet: bool
) -> np.ndarray:
    """The teacher's outputs on every transfer text, a chunk at a time behind a progress bar."""
    chunks = []
    bar = tqdm(total=len(texts), desc="Teacher labels the transfer texts", unit="text", disable=quiet)
    for start in range(0, len(texts), TEACHER_CHUNK):
        end = start + TEACHER_CHUNK
        chunks.append(teacher.logits(texts[start:end], pairs[start:end] if pairs else None, batch_size))
        bar.update(len(chunks[-1]))
    bar.close()
    return np.concatenate(chunks) if chunks else np.zeros((0, len(teacher.labels)), dtype=np.float32)


def _save_student(student: Student, teacher: Classifier, staging: Path, validation: LabelledRows) -> Classifier:
    """The student in safetensors with its tokenizer and settings; reloaded as a user would, it must give the
    logits it gave in memory on the first validation rows, or nothing is written."""
    model = student.model.to("cpu").eval()
    inherited = PackageSettings.read(teacher.model)
    settings = PackageSettings(
        max_length=student.max_length,
        long_text=student.long_text,
        primary_metric=inherited.primary_metric,
        label_separator=inherited.label_separator,
        # The student learns the teacher's probabilities, so the thresholds tuned on them decide for it too (and
        # the report's agreement is the agreement of the saved folder's decisions).
        thresholds=dict(inherited.thresholds),
    )
    settings.write(model)
    model.save_pretrained(staging, safe_serialization=True)
    student.tokenizer.save_pretrained(staging)
    in_memory = Classifier.from_model(model, student.tokenizer)
    reloaded = load_classifier(staging, device="cpu")
    texts = validation.texts[:RELOAD_ROWS]
    pairs = validation.pairs[:RELOAD_ROWS] if validation.pairs else None
    difference = float(np.max(np.abs(in_memory.logits(texts, pairs) - reloaded.logits(texts, pairs)), initial=0.0))
    if difference > LOGIT_TOLERANCE:
        raise RuntimeError(
            f"The saved student does not reproduce the trained one (largest logit difference "
            f"{difference:.2e} on {len(texts)} validation texts). Nothing was written; this is a bug."
        )
    student.method["reload_check"] = {"rows": len(texts), "max_abs_logit_difference": difference, "passed": True}
    return reloaded


def _compare(
    report: DistillReport,
    teacher: Classifier,
    student: Classifier,
    staging: Path,
    validation: LabelledRows,
    test: LabelledRows | None,
    options: DistillOptions,
) -> None:
    """Both models on the same files, then their serving cost on this CPU, one after the other."""
    for name, rows in (("validation", validation), ("test", test)):
        if rows is not None:
            report.splits[name] = compare_on(
                teacher, student, rows.file, rows.texts, rows.pairs, rows.labels, options.batch_size
            )
    teacher.model.to("cpu")
    report.cost["teacher"] = serving_cost(teacher, Path(options.teacher), validation.texts, validation.pairs)
    report.cost["student"] = serving_cost(student, staging, validation.texts, validation.pairs)


def _write_record(
    staging: Path,
    report: DistillReport,
    teacher: Classifier,
    student: Student,
    transfer: TransferSet,
) -> None:
    """metrics.json, so `evaluate`, `export` and `push` read the student as they read a trained folder."""
    evaluated = {name: split.student for name, split in report.splits.items()}
    RunRecord(
        task=teacher.task,
        strategy=f"distill ({report.student})",
        strategy_settings={"teacher": report.teacher, **student.method, **report.training},
        primary_metric=report.primary_metric,
        greater_is_better=metric_direction(teacher.task, report.primary_metric) is not False,
        eval=evaluated.get("validation", {}),
        test=evaluated.get("test"),
        trainable_parameters=report.cost["student"].parameters,
        total_parameters=report.cost["student"].parameters,
        train_runtime_s=report.training.get("train_runtime_s"),
        labels=[] if teacher.task == REGRESSION else list(teacher.labels),  # as training records a regression
        num_examples={"train": len(transfer.texts), **{name: split.rows for name, split in report.splits.items()}},
        data_sources={
            key: str(value)
            for key, value in {
                "train": report.transfer.get("train_file"),
                "unlabelled": report.transfer.get("text_file"),
                **{name: split.file for name, split in report.splits.items()},
            }.items()
            if value
        },
        nlp_transfer_version=__version__,
        max_length=student.max_length,
    ).save(staging)
