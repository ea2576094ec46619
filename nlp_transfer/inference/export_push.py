"""`push --with-onnx`: the verified ONNX graph uploaded beside the PyTorch weights, in the same commit.

A server that runs no Python model code (onnxruntime, Triton, a browser) can then serve the pushed classifier. The
export is `export_model`'s, with its verification: the graph is scored beside PyTorch on the run's validation texts,
and a graph that disagrees more than allowed stops the push before anything is uploaded. The exported folder (graph,
tokenizer, config.json, export_report.json) is written to a temporary folder and goes up as `onnx/` of the
repository, replacing what an earlier push put there; the trained folder is left as it was. A dry run exports and
verifies too, so that it shows the graph that would go and refuses what would be refused, without a token or the
network.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from nlp_transfer.errors import UserInputError
from nlp_transfer.hub.card import REPO_PLACEHOLDER
from nlp_transfer.hub.push import EXPORT_FOLDER, PushResult, check_pushable, push_folder, resolve_token
from nlp_transfer.hub.upload_plan import Attachment
from nlp_transfer.inference.export import ExportOptions, check_export_tools, export_model, onnx_card_section
from nlp_transfer.inference.export_check import ExportReport, ExportVerificationError

logger = logging.getLogger(__name__)

EXPORT_FIELDS = {field.name for field in fields(ExportOptions)} - {"model", "output_dir", "overwrite_output_dir"}
"""What of `ExportOptions` a push chooses; the graph goes to a temporary folder, then to the repository."""
ONNX_SUBFOLDER = EXPORT_FOLDER.rstrip("/")
"""Where the graph goes in the repository: transformers.js and optimum read `onnx/model.onnx` there too."""


@dataclass
class OnnxPushResult:
    """The push (or dry run) and the export's verification that let it go."""

    push: PushResult
    export: ExportReport


def push_with_onnx(
    model_dir: str | Path, repo_id: str, *, dry_run: bool = False, token: str | None = None, **options: Any
) -> OnnxPushResult:
    """Export and verify `model_dir` as ONNX, then push the folder and the graph (under `onnx/`) as one commit.

    `options` are `ExportOptions` fields (quantize, validation_file and its columns, min_agreement, max_rows,
    batch_size, latency) and `push_folder`'s keywords (private, revision, create_pr, commit_message, api). The folder
    is checked for pushing and the token found before the export's minutes are spent.
    """
    export_options = {name: options.pop(name) for name in list(options) if name in EXPORT_FIELDS}
    check_export_tools()
    # What the push would refuse is said now, not after the export's minutes.
    revision, create_pr = options.get("revision"), bool(options.get("create_pr"))
    folder, _, _ = check_pushable(model_dir, repo_id, revision, create_pr, dry_run)
    if not dry_run:
        resolve_token(token)
    with tempfile.TemporaryDirectory(prefix="nlp-transfer-push-onnx-") as scratch:
        exported = Path(scratch) / ONNX_SUBFOLDER
        logger.info("Exporting %s to ONNX and verifying it against PyTorch before the push", folder)
        try:
            report = export_model(ExportOptions(model=str(folder), output_dir=str(exported), **export_options))
        except ExportVerificationError as error:
            raise UserInputError(
                f"push --with-onnx refused: the ONNX export of {folder} failed its verification, so neither the "
                f"graph nor the model was uploaded. {error}"
            ) from None
        section = onnx_card_section(report, repo_id=REPO_PLACEHOLDER, subfolder=ONNX_SUBFOLDER)
        attachment = Attachment(folder=exported, prefix=f"{ONNX_SUBFOLDER}/", card_section=section)
        result = push_folder(folder, repo_id, dry_run=dry_run, token=token, attachment=attachment, **options)
    return OnnxPushResult(push=result, export=report)
