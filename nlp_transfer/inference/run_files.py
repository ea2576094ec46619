"""The data files the run that wrote a folder used, as its records name them: what `export` verifies on and what
`distill` teaches and scores with when the user names no file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.outputs import METRICS_FILE, RUN_CONFIG_FILE


def run_option(folder: Path, group: str, name: str) -> Any:
    """An option of the run that wrote `folder`, from its run_config.json (None when absent)."""
    try:
        return json.loads((folder / RUN_CONFIG_FILE).read_text(encoding="utf-8")).get(group, {}).get(name)
    except (OSError, ValueError, AttributeError):
        return None


def recorded_sources(folder: Path, split: str) -> tuple[str | None, str | None]:
    """(metrics.json's data source of `split`: 'train', 'validation', 'test'; the `--{split}-file` option given)."""
    source = (RunRecord.load(folder).data_sources or {}).get(split) if (folder / METRICS_FILE).is_file() else None
    return source, run_option(folder, "data", f"{split}_file")


def recorded_file(folder: Path, split: str) -> str | None:
    """The file the run used for `split`, when its records name one that is still there."""
    return next((str(name) for name in recorded_sources(folder, split) if name and Path(name).is_file()), None)
