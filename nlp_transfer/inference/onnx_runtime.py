"""An exported ONNX classifier run by onnxruntime, behind the interface `predict.Classifier` calls.

`nlp-transfer export` writes the graph (nlp_transfer.inference.export); `load_classifier` finds it through the folder's
settings and wraps it here, so `predict`, `evaluate` and chunked long texts run on it without a second code path:
Classifier tokenizes, batches and aggregates exactly as for the PyTorch model, and only the forward pass differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from nlp_transfer.errors import UserInputError

INSTALL_HINT = "pip install 'nlp-transfer[onnx]'"
LOGITS_OUTPUT = "logits"


def import_onnxruntime() -> Any:
    """onnxruntime, or one clear error saying how to install it (an optional extra)."""
    try:
        import onnxruntime
    except ImportError:
        raise UserInputError(f"ONNX models run with onnxruntime, which is not installed: {INSTALL_HINT}.") from None
    return onnxruntime


class OnnxSequenceClassifier:
    """An onnxruntime session that answers `model(**batch).logits` like a transformers classifier.

    `config` is the folder's config.json (labels, problem type, the package's settings). The session runs on the
    CPU, the device ONNX export targets here; `parameters()` says so to callers that ask a model for its device.
    """

    def __init__(self, path: Path, config: Any, threads: int | None = None) -> None:
        onnxruntime = import_onnxruntime()
        options = onnxruntime.SessionOptions()
        # The CPU arena keeps every buffer it ever grew for, and each batch of texts has a shape of its own: over a
        # corpus it grew peak memory by 30% from 60,000 to 300,000 rows; without it memory stays flat, for about 15%
        # of the speed (BENCHMARKS.md, "Predicting a whole corpus").
        options.enable_cpu_mem_arena = False
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for a missing, truncated or invalid graph
            raise UserInputError(
                f"{path} is not a readable ONNX graph ({type(error).__name__}: {str(error).splitlines()[0]}). "
                "Export the trained folder again with 'nlp-transfer export'."
            ) from None
        self.path = path
        self.config = config
        self.input_names = [node.name for node in self.session.get_inputs()]

    def __call__(self, **batch: Any) -> SimpleNamespace:
        missing = [name for name in self.input_names if name not in batch]
        if missing:
            raise UserInputError(
                f"{self.path} needs the inputs {', '.join(missing)}, which the folder's tokenizer did not produce; "
                "export the model again with its own tokenizer."
            )
        feeds = {name: np.asarray(batch[name].cpu(), dtype=np.int64) for name in self.input_names}
        (logits,) = self.session.run([LOGITS_OUTPUT], feeds)
        return SimpleNamespace(logits=torch.from_numpy(np.asarray(logits, dtype=np.float32)))

    def parameters(self) -> Iterator[torch.Tensor]:
        yield torch.zeros((), device="cpu")

    def to(self, device: Any) -> OnnxSequenceClassifier:
        if torch.device(device).type != "cpu":
            raise UserInputError(f"{self.path} runs on the CPU with onnxruntime; load it with device='cpu'.")
        return self

    def eval(self) -> OnnxSequenceClassifier:
        return self
