"""nlp-transfer: transfer learning for text classification on BERT-family encoders.

from nlp_transfer import RunConfig, fine_tune, load_classifier

config = RunConfig.from_dict({"output_dir": "runs/demo", "num_train_epochs": 2})
result = fine_tune(config)               # trains the bundled MiniLM on the demo data
classifier = load_classifier(result.output_dir)
classifier.predict(["My parcel never arrived."])
"""

__version__ = "0.1.0"

from nlp_transfer.config import (  # noqa: E402
    DataArguments,
    ModelArguments,
    RunConfig,
    StrategyArguments,
    TransferTrainingArguments,
)
from nlp_transfer.errors import UserInputError  # noqa: E402
from nlp_transfer.predict import Classifier, load_classifier, predict  # noqa: E402
from nlp_transfer.training import FineTuneResult, fine_tune  # noqa: E402

__all__ = [
    "Classifier",
    "DataArguments",
    "FineTuneResult",
    "ModelArguments",
    "RunConfig",
    "StrategyArguments",
    "TransferTrainingArguments",
    "UserInputError",
    "__version__",
    "fine_tune",
    "load_classifier",
    "predict",
]
