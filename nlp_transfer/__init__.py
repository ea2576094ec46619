"""nlp-transfer: transfer learning for text classification on BERT-family encoders.

from nlp_transfer import RunConfig, fine_tune, load_classifier

config = RunConfig.from_dict({"output_dir": "runs/demo", "num_train_epochs": 2})
result = fine_tune(config)               # trains the bundled MiniLM on the demo data
classifier = load_classifier(result.output_dir)
classifier.predict(["My parcel never arrived."])
evaluate_folder(result.output_dir, "dev.csv", bootstrap=1000).to_dict()   # the metric suite + intervals
push_folder(result.output_dir, "my-user/support-classifier")             # HF_TOKEN or `hf auth login`
RunRecord.load(result.output_dir).primary_value()                        # metrics.json, typed
"""

from nlp_transfer.config import (
    DataArguments,
    EvaluationArguments,
    ModelArguments,
    RunConfig,
    StrategyArguments,
    TransferTrainingArguments,
)
from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation import FolderEvaluation, evaluate_folder
from nlp_transfer.heads import register_heads as _register_heads  # noqa: F401  (importing registers the heads)
from nlp_transfer.predict import Classifier, load_classifier, predict
from nlp_transfer.push import PushResult, push_folder
from nlp_transfer.record import RunRecord
from nlp_transfer.training import FineTuneResult, fine_tune
from nlp_transfer.version import __version__

__all__ = [
    "Classifier",
    "DataArguments",
    "EvaluationArguments",
    "FineTuneResult",
    "FolderEvaluation",
    "ModelArguments",
    "PushResult",
    "RunConfig",
    "RunRecord",
    "StrategyArguments",
    "TransferTrainingArguments",
    "UserInputError",
    "__version__",
    "evaluate_folder",
    "fine_tune",
    "load_classifier",
    "predict",
    "push_folder",
]
