"""The strategy argument group: `StrategyArguments` (how much of the pretrained network to adapt), and the
table of the options each strategy reads (`STRATEGY_OPTIONS`)."""

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from nlp_transfer.config.checks import _check_range, option_flag
from nlp_transfer.errors import UserInputError

StrategyName = Literal["full", "freeze", "lora", "hybrid", "scratch"]

# The options of StrategyArguments each strategy reads. An option of another strategy, given a value other
# than its default, is refused: it would be silently ignored. The table sits here, not in the strategy
# classes, because config is below strategies in the import layering and must check it before any work;
# each strategy class names its row (`TransferStrategy.options`) and a test holds it to what it reads.
LORA_OPTIONS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target", "use_dora", "use_rslora", "merge_lora")
LAYERWISE_OPTIONS = ("layer_lr_decay", "head_lr_multiplier", "gradual_unfreeze", "unfreeze_every_steps")
STRATEGY_OPTIONS: dict[str, tuple[str, ...]] = {
    "full": ("freeze_word_embeddings", *LAYERWISE_OPTIONS),
    "freeze": ("train_top_layers", "train_embeddings"),
    "lora": LORA_OPTIONS,
    "hybrid": ("train_top_layers", *LORA_OPTIONS, *LAYERWISE_OPTIONS),
    "scratch": (),
}


@dataclass
class StrategyArguments:
    """How much of the pretrained network to adapt."""

    _argument_group_name = "strategy"

    strategy: StrategyName = field(
        default="full",
        metadata={
            "help": "Transfer strategy. full: every weight trains at a rate 10-100x below from-scratch "
            "(default lr 2e-5). freeze: embeddings and lower layers frozen, the top --train-top-layers and the "
            "head train (1e-4; K=0 is a linear probe). lora: peft LoRA matrices + the head (5e-4). hybrid: LoRA "
            "below the top K layers, the top K layers and head fully trained, layer-wise decayed rates (1e-4). "
            "scratch: same architecture, random weights: the baseline that shows what transfer saves (5e-4). "
            "ALBERT shares one layer's weights across all depths: 'top K layers' and per-layer rates then act "
            "on that one shared layer (it trains when K>=1, at the top layer's rate)."
        },
    )
    train_top_layers: int = field(
        default=2,
        metadata={"help": "freeze/hybrid: number of top encoder layers trained in full (0 = head only)."},
    )
    train_embeddings: bool = field(
        default=False, metadata={"help": "freeze: also train the embeddings (frozen by default)."}
    )
    freeze_word_embeddings: bool = field(
        default=False,
        metadata={
            "help": "full: keep the word-embedding matrix as pretrained (no gradient, no optimizer state); "
            "position embeddings, LayerNorm, every layer and the head still train. The matrix is about half of "
            "a small model's weights (MiniLM: 11.7M of 22.7M), so each step updates half as many."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "lora/hybrid: rank of the LoRA matrices."})
    lora_alpha: int = field(default=16, metadata={"help": "lora/hybrid: LoRA scaling numerator (alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "lora/hybrid: dropout on the LoRA input."})
    lora_target: str | None = field(
        default=None,
        metadata={
            "help": "lora/hybrid: modules that get LoRA matrices: default the attention query and value "
            "projections of the architecture; 'all-linear'; or comma-separated module names."
        },
    )
    use_dora: bool = field(default=False, metadata={"help": "lora/hybrid: weight-decomposed LoRA (DoRA)."})
    use_rslora: bool = field(default=False, metadata={"help": "lora/hybrid: rank-stabilised scaling alpha/sqrt(r)."})
    merge_lora: bool = field(
        default=False,
        metadata={"help": "lora/hybrid: also write the LoRA-merged plain model to OUTPUT_DIR/merged."},
    )
    layer_lr_decay: float | None = field(
        default=None,
        metadata={
            "help": "Layer-wise learning-rate decay (full, hybrid): the top layer gets the learning rate, each "
            "layer below the factor once more, the embeddings the lowest. Default 0.9 for hybrid, off (1.0) "
            "for full."
        },
    )
    head_lr_multiplier: float = field(
        default=1.0, metadata={"help": "full/hybrid: the head (and pooler) learn at this multiple of the rate."}
    )
    gradual_unfreeze: bool = field(
        default=False,
        metadata={
            "help": "full/hybrid (ULMFiT): start with the head alone and unfreeze one more layer from the top "
            "every epoch (or every --unfreeze-every-steps); the optimizer knows every group from the start."
        },
    )
    unfreeze_every_steps: int | None = field(
        default=None, metadata={"help": "With --gradual-unfreeze: unfreeze every N optimizer steps, not epochs."}
    )

    def check(self) -> None:
        """Refuse an unknown strategy, another strategy's options, and values outside their range."""
        if self.strategy not in STRATEGY_OPTIONS:
            raise UserInputError(f"Unknown --strategy '{self.strategy}'. Choose one of: {', '.join(STRATEGY_OPTIONS)}.")
        for item in dataclasses.fields(self):
            readers = [name for name, options in STRATEGY_OPTIONS.items() if item.name in options]
            if readers and self.strategy not in readers and getattr(self, item.name) != item.default:
                raise UserInputError(
                    f"{option_flag(item.name)} applies to {' and '.join(readers)}, not {self.strategy}. Leave it out, "
                    f"or choose --strategy {readers[0]}."
                )
        if self.unfreeze_every_steps is not None and not self.gradual_unfreeze:
            raise UserInputError("--unfreeze-every-steps sets the pace of --gradual-unfreeze: give both, or neither.")
        _check_range("train_top_layers", self.train_top_layers, minimum=0)
        _check_range("lora_r", self.lora_r, minimum=1)
        _check_range("lora_alpha", self.lora_alpha, above=0)
        _check_range("lora_dropout", self.lora_dropout, minimum=0, below=1)
        _check_range("layer_lr_decay", self.layer_lr_decay, above=0, maximum=1)
        _check_range("head_lr_multiplier", self.head_lr_multiplier, above=0)
        _check_range("unfreeze_every_steps", self.unfreeze_every_steps, minimum=1)
