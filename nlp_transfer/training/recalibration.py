"""`nlp-transfer calibrate`: a trained folder's temperature and conformal quantiles refitted on a labelled file.

Training calibrates on its validation rows, and the guarantee of a conformal set holds for texts exchangeable
with them. When the texts the model will see differ (SST-2 trains on short phrases and is used on whole
sentences; a model trained on one hospital's notes meets another's), a few hundred labelled texts of the new kind
recalibrate it without retraining: a temperature on top of the one already folded in, and new quantiles. The
result is a new folder (the original is never changed) that every loader reads as before; a folder trained
before calibration existed gains both.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_transfer.data.labels import LabelSchema
from nlp_transfer.data.reading import read_labelled
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.calibration import (
    CALIBRATION_METHODS,
    MIN_ROWS,
    Temperature,
    calibration_figures,
    fit_temperature,
    fold_temperature,
    probe_batch,
)
from nlp_transfer.evaluation.conformal import conformal_settings
from nlp_transfer.evaluation.metrics.suite import probabilities_from_logits
from nlp_transfer.folder_lock import folder_lock
from nlp_transfer.inference.onnx_runtime import OnnxSequenceClassifier
from nlp_transfer.inference.predict import Classifier, load_classifier
from nlp_transfer.outputs import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_WEIGHTS_FILE,
    CONFIG_FILE,
    MERGED_FOLDER,
    METRICS_FILE,
    OWNER_FILE,
    SHARDED_INDEX_FILE,
    WEIGHTS_FILE,
    check_output_dir,
    discard,
    publish,
    staging_dir,
    write_json,
)
from nlp_transfer.settings import PackageSettings
from nlp_transfer.tasks import REGRESSION
from nlp_transfer.training.saving import save_adapter_extras

logger = logging.getLogger(__name__)

REPORT_FILE = "calibration_report.json"
REWRITTEN = (
    CONFIG_FILE,
    WEIGHTS_FILE,
    SHARDED_INDEX_FILE,
    ADAPTER_WEIGHTS_FILE,
    ADAPTER_CONFIG_FILE,
    MERGED_FOLDER,
    OWNER_FILE,
)
"""What of the source folder the new folder writes itself (the merged copy is merged again from the recalibrated
adapter); the rest (tokenizer, card, records) is copied."""


@dataclass
class RecalibrationOptions:
    """`nlp-transfer calibrate`'s options."""

    model: str
    file: str
    output_dir: str
    calibration: str = "temperature"
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    encoding: str = "utf-8"
    batch_size: int = 32
    overwrite_output_dir: bool = False

    def check(self) -> None:
        if self.calibration not in CALIBRATION_METHODS:
            raise UserInputError(
                f"--calibration must be one of {', '.join(CALIBRATION_METHODS)}, not {self.calibration!r}."
            )
        if self.batch_size < 1:
            raise UserInputError(f"--batch-size must be at least 1, not {self.batch_size}.")


@dataclass
class RecalibrationReport:
    """What was fitted on which rows, and the file's figures before and after (calibration_report.json)."""

    model: str
    file: str
    rows: int
    task: str
    temperature: float | dict[str, float] | None = None
    """The new temperature, on top of `previous_temperature` (the one training folded in, if any)."""
    previous_temperature: float | dict[str, float] | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    conformal: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "file": self.file,
            "rows": self.rows,
            "task": self.task,
            "temperature": self.temperature,
            "previous_temperature": self.previous_temperature,
            "before": self.before,
            "after": self.after,
            "conformal": self.conformal,
            "note": "fitted on these rows, so the 'after' figures are in-sample; a file that played no part "
            "(nlp-transfer evaluate --coverage) gives the honest ones",
        }


def recalibrate(options: RecalibrationOptions) -> RecalibrationReport:
    """Refit the temperature (unless 'none') and the conformal quantiles on `options.file`; write a new folder."""
    options.check()
    inputs = {"--model": options.model, "--file": options.file}
    target = check_output_dir(options.output_dir, options.overwrite_output_dir, "the recalibrated classifier", inputs)
    classifier = load_classifier(options.model, device="cpu")
    if isinstance(classifier.model, OnnxSequenceClassifier):
        raise UserInputError(
            f"--model {options.model} is an ONNX export; calibrate the folder 'nlp-transfer train' wrote, then export "
            "the calibrated folder."
        )
    settings = PackageSettings.read(classifier.model)
    schema = LabelSchema(classifier.task, [] if classifier.task == REGRESSION else classifier.labels)
    data = read_labelled(
        options.file,
        schema,
        options.text_column,
        options.text_pair_column,
        options.label_column,
        settings.label_separator,
        options.encoding,
    )
    if len(data.texts) < MIN_ROWS:
        raise UserInputError(
            f"{options.file} has {len(data.texts)} labelled rows; calibrating needs at least {MIN_ROWS} (a few "
            "hundred like the texts the model will see give a temperature and sets worth trusting)."
        )
    report = _refit(classifier, settings, data, options)
    with folder_lock(target):
        staging = staging_dir(target)
        try:
            _write_folder(staging, Path(options.model), classifier, settings, report)
            publish(staging, target, command="calibrate", overwrite=options.overwrite_output_dir)
        except BaseException:
            discard(staging)
            raise
    return report


def _refit(classifier: Classifier, settings: PackageSettings, data: Any, options: RecalibrationOptions) -> Any:
    """Fit and fold the temperature into the loaded model, and the quantiles of its scores on the file."""
    task, labels = classifier.task, classifier.labels
    logits = classifier.logits(data.texts, data.pairs, options.batch_size)
    report = RecalibrationReport(options.model, options.file, len(data.texts), task)
    previous = (settings.calibration or {}).get("temperature")
    report.previous_temperature = previous
    if task != REGRESSION:
        report.before = calibration_figures(logits, data.labels, task, labels)
    if task != REGRESSION and options.calibration == "temperature":
        values = fit_temperature(lambda inverse: logits * inverse, data.labels, task, len(labels))
        temperature = Temperature(values, rows=len(data.texts), split=Path(options.file).name)
        layer = fold_temperature(classifier.model, values, probe_batch(classifier.tokenizer))
        logits = classifier.logits(data.texts, data.pairs, options.batch_size)  # the folded model, as saved
        report.temperature = temperature.to_json(labels, task)
        settings.calibration = {
            "method": "temperature",
            "temperature": _combined(previous, values, labels),
            "rows": len(data.texts),
            "folded_into": layer,
            "fitted_on": str(options.file),
        }
        logger.info(
            "Calibration: temperature %s fitted on %d rows of %s", report.temperature, report.rows, options.file
        )
    if task != REGRESSION:
        report.after = calibration_figures(logits, data.labels, task, labels)
    outputs = probabilities_from_logits(logits, task)
    settings.conformal = {
        **conformal_settings(outputs, data.labels, task),
        "fitted_on": str(options.file),
    }
    report.conformal = settings.conformal
    return report


def _combined(previous: Any, values: np.ndarray, labels: list[str]) -> float | dict[str, float]:
    """The temperature now folded in: the new one times the one training folded in (1 without one)."""
    if len(values) == 1:
        before = previous if isinstance(previous, (int, float)) else 1.0
        return round(float(before * values[0]), 6)
    before = previous if isinstance(previous, dict) else {}
    return {label: round(float(before.get(label, 1.0) * value), 6) for label, value in zip(labels, values)}


def _write_folder(
    staging: Path, source: Path, classifier: Classifier, settings: PackageSettings, report: RecalibrationReport
) -> None:
    """The recalibrated model with its settings, the source folder's other files, and the report."""
    for item in source.iterdir():
        if item.name in REWRITTEN or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, staging / item.name, symlinks=False)
        else:
            shutil.copy2(item, staging / item.name)
    model = classifier.model
    settings.write(model)
    model.save_pretrained(staging)
    if (source / ADAPTER_CONFIG_FILE).is_file():
        save_adapter_extras(model, staging, classifier.tokenizer, merge=(source / MERGED_FOLDER).is_dir())
    if (staging / METRICS_FILE).is_file():
        logger.info("%s is the training run's record; the recalibration is in %s", METRICS_FILE, REPORT_FILE)
    write_json(staging / REPORT_FILE, report.to_dict())
