"""What goes public: the run's records and the model card with the training machine's absolute paths reduced to names.

A leaf module (it imports only the file names of `outputs`): the model card (`hub`) and `push` both use it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nlp_transfer.outputs import DISTILL_REPORT_FILE, EXPORT_REPORT_FILE, METRICS_FILE, RUN_CONFIG_FILE

ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s()'\",]+/)+([^\s()'\",/]+)")
# Written with local paths in them (data sources, output folder, base model folder; a student's teacher folder; the
# exported folder and its validation file).
RECORDS_WITH_PATHS = (METRICS_FILE, RUN_CONFIG_FILE, DISTILL_REPORT_FILE, EXPORT_REPORT_FILE)


def public_text(text: str) -> str:
    """Absolute paths reduced to their last part: what goes public should not show the training machine's paths."""
    return ABSOLUTE_PATH.sub(r"\1", text)


def _public_json(value: Any) -> Any:
    if isinstance(value, str):
        return public_text(value)
    if isinstance(value, dict):
        return {key: _public_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_public_json(item) for item in value]
    return value


def public_record(path: Path) -> bytes:
    """metrics.json / run_config.json as uploaded: the same JSON with absolute paths reduced to names."""
    record = json.loads(path.read_text(encoding="utf-8"))
    return (json.dumps(_public_json(record), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
