"""`audit --method finetune`: out-of-sample probabilities from the package's own training, one run per fold.

Each fold's rest is written to a CSV (texts and label names) in a working folder and trained by `fine_tune` with
the options the user gave after `--` (strategy, epochs, ...); the fold's model then scores the held-out rows. The
working folder is removed at the end (kept with --work-dir).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nlp_transfer.data.prepare import PreparedData
from nlp_transfer.errors import UserInputError

logger = logging.getLogger(__name__)

FOLD_DATA_OPTIONS = (
    "--train-file",
    "--validation-file",
    "--test-file",
    "--eval-file",
    "--dataset-name",
    "--output-dir",
    "--text-column",
    "--text-pair-column",
    "--label-column",
    "--push-to-hub",
)
"""Options `audit` sets for every fold run itself; refused after `--`."""


def check_train_args(train_args: list[str]) -> None:
    """Refuse the data and output options the fold runs set themselves."""
    given = [arg.split("=", 1)[0] for arg in train_args if arg.startswith("--")]
    clash = [flag for flag in given if flag in FOLD_DATA_OPTIONS]
    if clash:
        raise UserInputError(
            f"{', '.join(clash)} after '--' would change what each fold trains on or where it goes; audit sets them "
            "for every fold. Give the training file and columns as audit's own options."
        )


def finetune_probabilities(
    data: PreparedData, texts: list[str], pairs: list[str] | None, labels: np.ndarray, folds: int, options: Any
) -> np.ndarray:
    """Each row's class probabilities from a `fine_tune` run on the other folds (`options`: audit's AuditOptions)."""
    from sklearn.model_selection import StratifiedKFold

    check_train_args(options.train_args)
    names = [data.schema.id2label[i] for i in range(data.schema.num_labels)]
    probabilities = np.zeros((len(labels), len(names)))
    work = Path(options.work_dir) if options.work_dir else Path(tempfile.mkdtemp(prefix="nlp-transfer-audit-"))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=options.seed)
    try:
        for fold, (fitted_on, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels), start=1):
            logger.info("Fold %d of %d: training on %d rows, scoring %d", fold, folds, len(fitted_on), len(held_out))
            folder = _train_fold(work / f"fold{fold}", texts, pairs, [names[i] for i in labels], fitted_on, options)
            probabilities[held_out] = _fold_probabilities(folder, texts, pairs, held_out, names)
    finally:
        if not options.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    return probabilities


def _train_fold(
    folder: Path, texts: list[str], pairs: list[str] | None, names: list[str], rows: np.ndarray, options: Any
) -> Path:
    from nlp_transfer.config.run import RunConfig
    from nlp_transfer.training.fine_tune import fine_tune

    folder.mkdir(parents=True, exist_ok=True)
    table = {"text": [texts[i] for i in rows], "label": [names[i] for i in rows]}
    if pairs is not None:
        table["text_pair"] = [pairs[i] for i in rows]
    pd.DataFrame(table).to_csv(folder / "train.csv", index=False)
    argv = [*options.train_args, "--train-file", str(folder / "train.csv"), "--output-dir", str(folder / "model")]
    argv += ["--text-column", "text", "--label-column", "label", "--seed", str(options.seed)]
    argv += ["--overwrite-output-dir", "true", "--disable-tqdm", str(not options.progress).lower()]
    if pairs is not None:
        argv += ["--text-pair-column", "text_pair"]
    config = RunConfig.from_args(argv, prog="nlp-transfer audit --method finetune --")
    return fine_tune(config).output_dir


def _fold_probabilities(
    folder: Path, texts: list[str], pairs: list[str] | None, rows: np.ndarray, names: list[str]
) -> np.ndarray:
    from nlp_transfer.inference.predict import load_classifier

    classifier = load_classifier(folder)
    held_texts = [texts[i] for i in rows]
    held_pairs = [pairs[i] for i in rows] if pairs is not None else None
    predictions = classifier.predict(held_texts, held_pairs)
    return np.array([[prediction["scores"].get(name, 0.0) for name in names] for prediction in predictions])
