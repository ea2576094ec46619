"""The package's settings saved inside a model's `config.json`, under the key `nlp_transfer`.

Training writes them; prediction, evaluation and the reload check read them, so that a reloaded model
truncates, decides and reports exactly as it did when it was trained. This module is their only owner.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nlp_transfer.version import __version__

PACKAGE_CONFIG_KEY = "nlp_transfer"


@dataclass
class PackageSettings:
    """What the package keeps with a model: how texts were truncated and read, and how decisions are made."""

    version: str | None = __version__
    max_length: int | None = None
    """Tokens per text at training time; prediction truncates the same way."""
    long_text: str | None = None
    """How texts longer than max_length were read (nlp_transfer.data.long_text's modes); None: truncate-head."""
    chunk_stride: int | None = None
    """With long_text chunk: the tokens consecutive windows share."""
    chunk_aggregate: str | None = None
    """With long_text chunk: how a text's window logits become its logits (long_text.AGGREGATIONS)."""
    primary_metric: str | None = None
    label_separator: str | None = None
    """The multi-label separator of the training CSV, so `evaluate` reads files written the same way."""
    onnx_file: str | None = None
    """In a folder written by `nlp-transfer export`: the ONNX graph `load_classifier` runs (fp32 or int8)."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """Tuned decision thresholds (label name -> probability); empty means argmax / 0.5."""
    calibration: dict[str, Any] | None = None
    """The temperature fitted after training: {method, temperature, rows}. For the reader only: it is already
    folded into the output layer's weights, so no loader applies it again. None: raw scores."""
    conformal: dict[str, Any] | None = None
    """What `predict --coverage` needs (nlp_transfer.evaluation.conformal): {score, rows, quantiles: {level: q}}."""

    @classmethod
    def read(cls, model_or_config: Any) -> PackageSettings:
        """The settings of a model (its base model's, for a peft adapter) or a config; defaults where absent.

        A folder not written by this package, or written by an older version, has some or none of them.
        """
        saved = getattr(_config_of(model_or_config), PACKAGE_CONFIG_KEY, None)
        if not isinstance(saved, dict):
            return cls(version=None)
        known = {f.name for f in fields(cls)}
        values = {name: value for name, value in saved.items() if name in known}
        values["thresholds"] = dict(values.get("thresholds") or {})
        return cls(**{"version": None, **values})

    def write(self, model_or_config: Any) -> None:
        """Store the settings in the model's config, so that `save_pretrained` puts them in config.json."""
        setattr(_config_of(model_or_config), PACKAGE_CONFIG_KEY, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if not values["thresholds"]:
            del values["thresholds"]  # as before: the key appears only when thresholds were tuned
        for name in ("long_text", "chunk_stride", "chunk_aggregate", "onnx_file", "calibration", "conformal"):
            if values[name] is None:
                del values[name]  # absent unless set: a folder written before the option reads as truncate-head
        return values


def _config_of(model_or_config: Any) -> Any:
    model = model_or_config.get_base_model() if hasattr(model_or_config, "get_base_model") else model_or_config
    return getattr(model, "config", model)
