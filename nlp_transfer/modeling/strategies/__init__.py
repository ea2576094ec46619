"""Transfer strategies: one module each, one registry."""

from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.strategies.base import (
    PreparedModel,
    StrategyContext,
    TransferStrategy,
    count_parameters,
)
from nlp_transfer.modeling.strategies.freeze import LayerFreezing
from nlp_transfer.modeling.strategies.full import FullFineTuning
from nlp_transfer.modeling.strategies.hybrid import Hybrid
from nlp_transfer.modeling.strategies.lora import LoRA
from nlp_transfer.modeling.strategies.scratch import FromScratch

STRATEGIES: dict[str, TransferStrategy] = {
    strategy.name: strategy for strategy in (FullFineTuning(), LayerFreezing(), LoRA(), Hybrid(), FromScratch())
}


def get_strategy(name: str) -> TransferStrategy:
    """The registered strategy called `name`, or a clear error listing the known ones."""
    try:
        return STRATEGIES[name]
    except KeyError:
        known = "; ".join(f"{s.name}: {s.summary}" for s in STRATEGIES.values())
        raise UserInputError(f"Unknown --strategy '{name}'. Available: {known}.") from None


__all__ = [
    "STRATEGIES",
    "PreparedModel",
    "StrategyContext",
    "TransferStrategy",
    "count_parameters",
    "get_strategy",
]
