"""`nlp-transfer export`: a trained folder as an ONNX graph (and int8), verified against PyTorch before it is written.

Why not optimum: its ONNX exporter does not support transformers 5 (optimum-onnx issue 114, open). The graph
comes from torch's own `torch.onnx.export` (the torch.export-based exporter, dynamic batch and sequence axes), int8
from onnxruntime's `quantize_dynamic` (int8 weights, activations quantised on the fly: no calibration data).

Verification is part of the export: the exported model scores the validation texts through the same
`predict.Classifier` code as the PyTorch model (tokenization, long-text windows, thresholds); the largest logit
difference, the share of identical decisions and the primary metric of each form go to export_report.json, and an
agreement below the threshold stops the export with nothing written. A LoRA folder is merged first.

This module exports, quantises and writes the folder; the comparison with PyTorch (agreement, metrics, latency,
the report and its table) is in `nlp_transfer.inference.export_check`.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlp_transfer.data.labels import LabelSchema
from nlp_transfer.data.reading import read_labelled
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics import reported_primary, reported_suite
from nlp_transfer.folder_lock import folder_lock
from nlp_transfer.hub.card import template_path
from nlp_transfer.inference.export_check import (
    MIN_AGREEMENT,
    ExportReport,
    ExportVerificationError,
    FormCheck,
    _failure_message,
    _onnx_classifier,
    _primary_value,
    label_agreement,
    measure_latency,
)
from nlp_transfer.inference.onnx_runtime import INSTALL_HINT, LOGITS_OUTPUT, OnnxSequenceClassifier
from nlp_transfer.inference.predict import Classifier, load_classifier
from nlp_transfer.inference.run_files import recorded_file, recorded_sources
from nlp_transfer.outputs import (
    CARD_FILE,
    CHECKPOINT_PREFIX,
    CONFIG_FILE,
    EXPORT_REPORT_FILE,
    METRICS_FILE,
    check_output_dir,
    discard,
    publish,
    staging_dir,
    write_json,
)
from nlp_transfer.settings import PackageSettings
from nlp_transfer.tasks import REGRESSION

logger = logging.getLogger(__name__)

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
ONNX_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
REPORT_FILE = EXPORT_REPORT_FILE


@dataclass
class ExportOptions:
    """`nlp-transfer export`'s options (the CLI parses them; `export_model` checks them first)."""

    model: str
    output_dir: str
    format: str = "onnx"
    quantize: str | None = None
    validation_file: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    encoding: str = "utf-8"
    min_agreement: float | None = None
    max_rows: int = 1000
    batch_size: int = 32
    latency: bool = True
    overwrite_output_dir: bool = False

    def check(self) -> None:
        if self.format not in FORMATS:
            raise UserInputError(f"--format {self.format!r} is not supported; use one of {', '.join(FORMATS)}.")
        if self.quantize not in (None, *QUANTIZATIONS):
            raise UserInputError(f"--quantize {self.quantize!r} is not supported; use {', '.join(QUANTIZATIONS)}.")
        if self.min_agreement is not None and not 0 < self.min_agreement <= 1:
            raise UserInputError(f"--min-agreement must be in (0, 1], e.g. 0.995; not {self.min_agreement}.")
        for name in ("max_rows", "batch_size"):
            if getattr(self, name) < 1:
                raise UserInputError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}.")


def export_model(options: ExportOptions) -> ExportReport:
    """Export, verify and time; publish the folder only when every form agrees with PyTorch well enough."""
    options.check()
    check_export_tools()  # the optional extra, checked before any work
    inputs = {"--model": options.model, "--validation-file": options.validation_file}
    target = check_output_dir(options.output_dir, options.overwrite_output_dir, "the exported classifier", inputs)
    reference = _reference_classifier(options.model)
    texts, pairs, labels, source = _validation_data(options, reference)
    with folder_lock(target):
        staging = staging_dir(target)
        try:
            report = _export_into(staging, options, reference, texts, pairs, labels, source)
            write_json(staging / REPORT_FILE, report.to_dict())
            if not report.passed:
                raise ExportVerificationError(_failure_message(report))
            _write_card(staging, Path(options.model), report)
            publish(staging, target, command="export", overwrite=options.overwrite_output_dir)
        except BaseException:
            discard(staging)
            raise
    return report


def check_export_tools() -> None:
    """onnx, onnxscript (torch's exporter needs it) and onnxruntime are there, or one error naming the extra."""
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserInputError(f"Exporting to ONNX needs {', '.join(missing)}, not installed: {INSTALL_HINT}.")


def _reference_classifier(model: str) -> Classifier:
    """The trained folder in PyTorch on the CPU, a LoRA adapter merged into its base (one graph to export)."""
    classifier = load_classifier(model, device="cpu")
    if isinstance(classifier.model, OnnxSequenceClassifier):
        raise UserInputError(f"--model {model} is already an ONNX export; give the folder 'nlp-transfer train' wrote.")
    if hasattr(classifier.model, "merge_and_unload"):
        classifier.model = classifier.model.merge_and_unload()
    classifier.model.float().eval()
    return classifier


def _validation_data(
    options: ExportOptions, reference: Classifier
) -> tuple[list[str], list[str] | None, np.ndarray, dict[str, Any]]:
    """The texts both forms are scored on: --validation-file, or the training run's validation file."""
    path = options.validation_file or _training_validation_file(Path(options.model))
    settings = PackageSettings.read(reference.model)
    schema = LabelSchema(reference.task, [] if reference.task == REGRESSION else reference.labels)
    data = read_labelled(
        path,
        schema,
        options.text_column,
        options.text_pair_column,
        options.label_column,
        settings.label_separator,
        options.encoding,
    )
    rows = min(len(data.texts), options.max_rows)
    pairs = data.pairs[:rows] if data.pairs else None
    return data.texts[:rows], pairs, data.labels[:rows], {"file": str(path), "rows": rows}


def _training_validation_file(folder: Path) -> str:
    """The validation file the run that wrote `folder` was scored on; refused, saying why, when none can be read."""
    if not (folder / METRICS_FILE).is_file():
        kind = "a checkpoint of a run" if folder.name.startswith(CHECKPOINT_PREFIX) else "not a finished output folder"
        why = f"{folder} has no {METRICS_FILE} ({kind}), so the validation file of its run is unknown"
    else:
        found = recorded_file(folder, "validation")
        if found is not None:
            return found
        source, given = recorded_sources(folder, "validation")
        if given:
            why = f"the run of {folder} was validated on {given}, which is no longer there"
        else:
            why = f"the run of {folder} had no validation file (it was validated on {source or 'no file'})"
    raise UserInputError(
        f"Export verifies the model on labelled texts, and {why}. Give a labelled file with --validation-file FILE."
    )


def _export_into(
    staging: Path,
    options: ExportOptions,
    reference: Classifier,
    texts: list[str],
    pairs: list[str] | None,
    labels: np.ndarray,
    source: dict[str, Any],
) -> ExportReport:
    """Write graph(s), tokenizer and config into `staging`, then verify and time every form."""
    opset = export_graph(reference.model, reference.tokenizer, staging / ONNX_FILE)
    files = {"fp32": ONNX_FILE}
    if options.quantize == "int8":
        quantize_int8(staging / ONNX_FILE, staging / INT8_FILE, feed_forward_sizes(reference.model.config))
        files["int8"] = INT8_FILE
    deployed = files["int8" if options.quantize else "fp32"]
    _write_folder(staging, reference, deployed)
    primary = reported_primary(
        reference.task, len(reference.labels), PackageSettings.read(reference.model).primary_metric
    )
    suite = reported_suite(reference.task, reference.labels, [primary], primary, reference.thresholds)
    reference_logits = reference.logits(texts, pairs, options.batch_size)
    report = ExportReport(
        model=str(options.model),
        format=options.format,
        quantize=options.quantize,
        deployed_file=deployed,
        validation=source,
        primary_metric=primary,
        pytorch_primary_metric=_primary_value(suite, primary, reference_logits, labels),
        opset=opset,
        max_length=reference.max_length,
        long_text=reference.long_text,
    )
    forms = {"pytorch": reference}
    for form, file in files.items():
        exported = _onnx_classifier(staging / file, reference)
        logits = exported.logits(texts, pairs, options.batch_size)
        agreement = label_agreement(reference, reference_logits, logits, labels)
        threshold = options.min_agreement if options.min_agreement is not None else MIN_AGREEMENT[form]
        report.forms[form] = FormCheck(
            file=file,
            max_abs_logit_difference=float(np.max(np.abs(logits - reference_logits))) if len(logits) else 0.0,
            label_agreement=agreement,
            primary_metric=_primary_value(suite, primary, logits, labels),
            min_agreement=threshold,
            passed=agreement >= threshold,
        )
        forms[form] = exported
    if options.latency:
        report.latency = {form: measure_latency(classifier, texts, pairs) for form, classifier in forms.items()}
    return report


def _write_folder(staging: Path, reference: Classifier, deployed: str) -> None:
    """The tokenizer and config.json (labels, task, the package's settings naming the graph load_classifier runs).

    The config names no Python code (no `auto_map`, no pooled_heads.py beside it): the graph needs none, and
    without it `AutoTokenizer` reads the folder with transformers alone, never asking to run remote code.
    """
    config = copy.deepcopy(reference.model.config)
    settings = PackageSettings.read(config)
    settings.onnx_file = deployed
    settings.max_length = reference.max_length
    settings.write(config)
    config._auto_class = None  # an instance attribute: the class stays registered for the PyTorch folders
    if hasattr(config, "auto_map"):
        del config.auto_map
    config.save_pretrained(staging)
    reference.tokenizer.save_pretrained(staging)


class _LogitsOf(torch.nn.Module):
    """The classifier as a function of its tokenizer's tensors to logits: the graph's one output."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def export_graph(model: torch.nn.Module, tokenizer: Any, path: Path) -> int | None:
    """torch.onnx.export of the classifier with dynamic batch and sequence axes; returns the graph's opset.

    The example batch has padding, so nothing in the traced graph assumes an all-ones attention mask.
    """
    example = tokenizer(
        ["A short example.", "A longer example text, so that the first row of this batch is padded."],
        padding=True,
        return_tensors="pt",
    )
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in example]
    inputs = {name: example[name] for name in names}
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")  # the graph's axis names
    dims = {name: {0: batch, 1: sequence} for name in names}
    with torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(
            _LogitsOf(model).eval(),
            args=(),
            kwargs=inputs,
            input_names=names,
            output_names=[LOGITS_OUTPUT],
            dynamic_shapes=dims,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    program.save(str(path), external_data=False)
    import onnx

    graph = onnx.load(str(path), load_external_data=False)
    strip_debug_metadata(graph)
    onnx.save(graph, str(path))
    return next((entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")), None)


def strip_debug_metadata(graph: Any) -> None:
    """Drop the exporter's debugging notes from an ONNX model, in place.

    torch's exporter keeps, per node and value, the Python stack trace that made it (with the absolute paths of
    site-packages and of the training machine), the fx node and the module names. Inference needs none of it, and
    the graph is published (`push --with-onnx`), so none of it stays.
    """
    for node in graph.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for values in (graph.graph.value_info, graph.graph.input, graph.graph.output, graph.graph.initializer):
        for value in values:
            del value.metadata_props[:]


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's notes that do not concern a text classifier: torchvision's operators it skips, and that it
    keeps one name for the axes that share a size (every input's batch and sequence axes)."""
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*axis name: .* will not be used.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        exporter_log.setLevel(level)


def feed_forward_sizes(config: Any) -> tuple[int, int] | None:
    """(intermediate, hidden) size of the encoder's feed-forward layers, read from the model's config."""
    intermediate = getattr(config, "intermediate_size", None) or getattr(config, "hidden_dim", None)  # DistilBERT
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None)
    if not intermediate or not hidden or intermediate == hidden:  # equal sizes: the projections cannot be told apart
        return None
    return int(intermediate), int(hidden)


def feed_forward_outputs(graph: Any, sizes: tuple[int, int] | None) -> list[str]:
    """The MatMul nodes that take a feed-forward layer back from its intermediate size to the hidden size."""
    if sizes is None:
        return []
    shapes = {tensor.name: tuple(tensor.dims) for tensor in graph.graph.initializer}
    return [
        node.name
        for node in graph.graph.node
        if node.op_type == "MatMul" and any(shapes.get(name) == sizes for name in node.input)
    ]


def quantize_int8(
    source: Path, target: Path, feed_forward: tuple[int, int] | None = None, per_channel: bool = True
) -> None:
    """Dynamic int8 quantisation of the graph's weights (onnxruntime.quantization); activations stay float.

    Two departures from onnxruntime's defaults, both measured on MiniLM fine-tuned on SST-2 (BENCHMARKS.md,
    "Export"; scripts/benchmark_int8.py), where the defaults changed 4.5% of the decisions (export allows 2%):
    - one scale per output channel of each weight, not one per tensor (1.6% of the decisions changed);
    - the feed-forward output projections (`feed_forward`: their intermediate x hidden weights) stay fp32: their
      inputs, after the activation function, have the widest range in the encoder, and one int8 scale for such
      an input costs most (0.7% changed; the graph is 33 MB instead of 23, fp32's 91; batch-32 throughput
      about a sixth lower than all-int8, still 1.5x fp32's).
    `feed_forward=None, per_channel=False` is onnxruntime's default quantisation (scripts/benchmark_int8.py).
    onnxruntime recommends its pre-processing first (graph optimisation and shape inference); its symbolic shape
    inference does not finish on torch.export's graphs, so only ONNX's own shape inference runs, and a graph
    that cannot be pre-processed at all is quantised as it is.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, target = source.resolve(), target.resolve()
    with tempfile.TemporaryDirectory(prefix="nlp-transfer-quantize-") as scratch, _working_directory(Path(scratch)):
        prepared = Path(scratch) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        except Exception as error:  # onnxruntime raises several types; quantising the graph as it is still works
            logger.info("Quantising without pre-processing (%s: %s)", type(error).__name__, error)
            prepared = source
        kept = feed_forward_outputs(onnx.load(str(prepared)), feed_forward)
        logger.info("int8: %d feed-forward output projections stay fp32", len(kept))
        quantize_dynamic(
            str(prepared), str(target), weight_type=QuantType.QInt8, per_channel=per_channel, nodes_to_exclude=kept
        )


@contextmanager
def _working_directory(folder: Path) -> Iterator[None]:
    """Run in `folder`: onnxruntime's symbolic shape inference writes its temporary files into the working
    directory (sym_shape_infer_temp.onnx and a .data file), which would otherwise be the user's."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _write_card(staging: Path, source: Path, report: ExportReport) -> None:
    """README.md: the trained folder's card (when it has one) and a section on running the graph in onnxruntime."""
    card = source / CARD_FILE
    text = card.read_text(encoding="utf-8").rstrip() + "\n\n" if card.is_file() else ""
    (staging / CARD_FILE).write_text(text + onnx_card_section(report) + "\n", encoding="utf-8")


def onnx_card_section(report: ExportReport, repo_id: str | None = None, subfolder: str = "") -> str:
    """The card's section on the exported graph: its verification figures and how to run it.

    For an exported folder, the snippets read "path/to/this/folder"; for a push (`repo_id`), they download the
    export's `subfolder` of that repository. The bare onnxruntime snippet cuts texts where the verified runs did:
    at the reference's max length, not 512.
    """
    from jinja2 import Template

    section = Template(template_path("onnx_section.md").read_text(encoding="utf-8")).render(
        report=report.to_dict(),
        config_file=CONFIG_FILE,
        report_file=REPORT_FILE,
        max_length=report.max_length or 512,
        long_text=report.long_text,
        repo_id=repo_id,
        subfolder=subfolder,
    )
    return section.strip()
