"""Saving the trained model into the staging folder: weights, tokenizer, and what an adapter needs beside it.

peft saves no `config.json` with an adapter, so `AutoPeftModel` rebuilds the base with 2 labels (a size
mismatch for 4 classes, LABEL_0/LABEL_1 for two); this package saves the classification config beside
the adapter and `load_classifier` builds the base from it. With --merge-lora a merged plain model too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import nn

from nlp_transfer.outputs import MERGED_FOLDER, remove_intermediates
from nlp_transfer.settings import PackageSettings


def save_model(trainer: Any, folder: Path, settings: PackageSettings, is_adapter: bool, merge_lora: bool) -> None:
    """The model (or adapter) with its settings in config.json, the tokenizer, and an adapter's extras.

    `trainer.save_model` writes on the main process only; the other steps are called on it alone.
    """
    settings.write(trainer.model)
    trainer.save_model(str(folder))
    if not trainer.is_world_process_zero():
        return
    remove_intermediates(folder)
    if is_adapter:
        save_adapter_extras(trainer.model, folder, trainer.processing_class, merge_lora)


def save_adapter_extras(peft_model: nn.Module, folder: Path, tokenizer: Any, merge: bool) -> None:
    """Beside the adapter: the classification config (labels, task type), and with `merge` a merged model."""
    base = peft_model.get_base_model()
    base.config.save_pretrained(folder)
    if merge:
        # merge_and_unload rewrites the model it is called on: merge a copy, keep the adapter model intact.
        merged = copy.deepcopy(peft_model).merge_and_unload()
        merged_dir = folder / MERGED_FOLDER
        merged.save_pretrained(merged_dir)
        tokenizer.save_pretrained(merged_dir)
