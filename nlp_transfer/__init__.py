"""nlp-transfer: transfer learning for text classification on BERT-family encoders.

from nlp_transfer import RunConfig, fine_tune, load_classifier

config = RunConfig.from_dict({"output_dir": "runs/demo", "num_train_epochs": 2})
result = fine_tune(config)               # trains the bundled MiniLM on the demo data
classifier = load_classifier(result.output_dir)
classifier.predict(["My parcel never arrived."])
predict_corpus(result.output_dir, "tickets.csv", "tickets.parquet")  # a whole file, streamed and resumable
evaluate_folder(result.output_dir, "dev.csv", bootstrap=1000).to_dict()   # the metric suite + intervals
push_folder(result.output_dir, "my-user/support-classifier")             # HF_TOKEN or `hf auth login`
push_with_onnx(result.output_dir, "my-user/support-classifier")          # + the verified ONNX graph, one commit
suggest("pool.csv", SuggestOptions(k=32, model=result.output_dir)).table  # which texts to label next
audit(DataArguments(train_file="train.csv"), AuditOptions()).table        # rows whose label looks wrong
RunRecord.load(result.output_dir).primary_value()                        # metrics.json, typed
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from nlp_transfer.errors import UserInputError
from nlp_transfer.version import __version__

# Each public name and the module that defines it. Under the console script they load on first use (PEP 562), so
# that --help and argument errors do not pay for torch and transformers; elsewhere all of them load below.
_PUBLIC = {
    "AuditOptions": "nlp_transfer.labels.audit",
    "Classifier": "nlp_transfer.inference.predict",
    "CorpusOptions": "nlp_transfer.inference.corpus",
    "DataArguments": "nlp_transfer.config.data",
    "DistillOptions": "nlp_transfer.distill.run",
    "EvaluationArguments": "nlp_transfer.config.evaluation",
    "FineTuneResult": "nlp_transfer.training.fine_tune",
    "FolderEvaluation": "nlp_transfer.inference.folder_evaluation",
    "ModelArguments": "nlp_transfer.config.model",
    "PushResult": "nlp_transfer.hub.push",
    "RunConfig": "nlp_transfer.config.run",
    "RunRecord": "nlp_transfer.evaluation.record",
    "StrategyArguments": "nlp_transfer.config.strategy",
    "SuggestOptions": "nlp_transfer.labels.suggest",
    "TransferTrainingArguments": "nlp_transfer.config.training",
    "audit": "nlp_transfer.labels.audit",
    "distill": "nlp_transfer.distill.run",
    "evaluate_folder": "nlp_transfer.inference.folder_evaluation",
    "fine_tune": "nlp_transfer.training.fine_tune",
    "load_classifier": "nlp_transfer.inference.predict",
    "predict": "nlp_transfer.inference.predict",
    "predict_corpus": "nlp_transfer.inference.corpus",
    "push_folder": "nlp_transfer.hub.push",
    "push_with_onnx": "nlp_transfer.inference.export_push",
    "suggest": "nlp_transfer.labels.suggest",
}

__all__ = [
    "AuditOptions",
    "Classifier",
    "CorpusOptions",
    "DataArguments",
    "DistillOptions",
    "EvaluationArguments",
    "FineTuneResult",
    "FolderEvaluation",
    "ModelArguments",
    "PushResult",
    "RunConfig",
    "RunRecord",
    "StrategyArguments",
    "SuggestOptions",
    "TransferTrainingArguments",
    "UserInputError",
    "__version__",
    "distill",
    "evaluate_folder",
    "fine_tune",
    "load_classifier",
    "predict",
    "predict_corpus",
    "push_folder",
    "push_with_onnx",
    "suggest",
]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'nlp_transfer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


# `import nlp_transfer` registers the pooled heads with transformers' Auto classes, so that `transformers.pipeline`
# loads a folder with one (README, the model cards). It imports torch; the console script, which registers them
# in the commands that load models, skips it here (see nlp_transfer_cli.py).
if "nlp_transfer_cli" not in sys.modules:
    importlib.import_module("nlp_transfer.modeling.heads")
    for _name in _PUBLIC:
        __getattr__(_name)

if TYPE_CHECKING:
    from nlp_transfer.config.data import DataArguments
    from nlp_transfer.config.evaluation import EvaluationArguments
    from nlp_transfer.config.model import ModelArguments
    from nlp_transfer.config.run import RunConfig
    from nlp_transfer.config.strategy import StrategyArguments
    from nlp_transfer.config.training import TransferTrainingArguments
    from nlp_transfer.evaluation.record import RunRecord
    from nlp_transfer.hub.push import PushResult, push_folder
    from nlp_transfer.inference.corpus import CorpusOptions, predict_corpus
    from nlp_transfer.inference.export_push import push_with_onnx
    from nlp_transfer.inference.folder_evaluation import FolderEvaluation, evaluate_folder
    from nlp_transfer.inference.predict import Classifier, load_classifier, predict
    from nlp_transfer.training.fine_tune import FineTuneResult, fine_tune
