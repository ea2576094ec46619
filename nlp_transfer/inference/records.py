"""One text's prediction as an output row: the same fields, in the same order, for `predict --text` and a corpus.

`prediction_fields` names a row's fields before any text is predicted (a CSV header, a Parquet schema), and
`FIELD_TYPES` types them, so every chunk of a corpus writes the same columns even where all its texts are skipped.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from nlp_transfer.tasks import MULTI_LABEL, REGRESSION

SKIPPED = "skipped"
"""Why a row got no prediction (an empty text); absent (JSON Lines) or empty (CSV, Parquet) for predicted rows."""


def prediction_record(
    text: str, pair: str | None, prediction: dict, top_k: int | None, all_scores: bool
) -> dict[str, object]:
    record: dict[str, object] = {"text": text}
    if pair is not None:
        record["text_pair"] = pair
    if "labels" in prediction:  # multi-label: the labels over their thresholds, and every label's score
        return {**record, **prediction}
    extras = {key: value for key, value in prediction.items() if key not in ("label", "score", "scores")}
    record.update(label=prediction["label"], score=prediction["score"], **extras)
    if "scores" in prediction and top_k is not None:
        # The decided label first: with a tuned binary threshold it can be the less probable one.
        ranked = sorted(prediction["scores"].items(), key=lambda item: (item[0] != prediction["label"], -item[1]))
        ranked = ranked[:top_k]
        record["top_k"] = [{"label": label, "score": score} for label, score in ranked]
    elif "scores" in prediction and all_scores:
        record["scores"] = prediction["scores"]
    return record


def skipped_record(text: Any, pair: Any, task: str, reason: str, with_pair: bool) -> dict[str, object]:
    """The row of a text that was not predicted: its label(s) null and the reason."""
    record: dict[str, object] = {"text": text}
    if with_pair:
        record["text_pair"] = pair
    record["labels" if task == MULTI_LABEL else "label"] = None
    record[SKIPPED] = reason
    return record


def prediction_fields(
    task: str,
    with_pair: bool,
    top_k: int | None = None,
    all_scores: bool = False,
    coverage: float | None = None,
    min_confidence: float | None = None,
) -> list[str]:
    """The fields of `prediction_record`'s rows for these options, in its order (tests hold the two together)."""
    fields = ["text", *(["text_pair"] if with_pair else [])]
    if task == MULTI_LABEL:
        fields += ["labels", "scores"]
    else:
        fields += ["label", "score"]
    if coverage is not None:
        fields += ["interval", "coverage"] if task == REGRESSION else ["label_set", "set_size", "coverage"]
    if min_confidence is not None:
        fields += ["confidence", "abstained"]
    if task != MULTI_LABEL and task != REGRESSION:
        fields += ["top_k"] if top_k is not None else ["scores"] if all_scores else []
    return fields


def field_types(labels: list[str]) -> dict[str, pa.DataType]:
    """Each prediction field's Arrow type (Parquet output); `scores` has one float per label."""
    return {
        "text": pa.string(),
        "text_pair": pa.string(),
        "label": pa.string(),
        "score": pa.float64(),
        "labels": pa.list_(pa.string()),
        "scores": pa.struct([(label, pa.float64()) for label in labels]),
        "top_k": pa.list_(pa.struct([("label", pa.string()), ("score", pa.float64())])),
        "label_set": pa.list_(pa.string()),
        "set_size": pa.int64(),
        "interval": pa.list_(pa.float64()),
        "coverage": pa.float64(),
        "confidence": pa.float64(),
        "abstained": pa.bool_(),
        SKIPPED: pa.string(),
    }
