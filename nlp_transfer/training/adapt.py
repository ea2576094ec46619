"""Unsupervised transfer: continue masked-language-model pretraining on unlabelled domain text (DAPT/TAPT).

Gururangan et al. (2020), "Don't Stop Pretraining": a few epochs of the original masked-LM objective on text
of the target domain (or of the task itself) before fine-tuning help most where the domain is far from the
pretraining data: medicine, law, support tickets. `adapt` does that through Trainer and transformers'
`DataCollatorForLanguageModeling`, measures the masked-LM loss and perplexity on held-out domain text before
and after, and writes a checkpoint that `nlp-transfer train --model DIR` takes like any other.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, set_seed

from nlp_transfer.config.training import TransferTrainingArguments
from nlp_transfer.data.checks import check_encoding_name, describe_read_error
from nlp_transfer.data.reading import read_texts as read_table_texts
from nlp_transfer.errors import UserInputError
from nlp_transfer.folder_lock import folder_lock
from nlp_transfer.modeling.checkpoints import (
    BUNDLED_ALIAS,
    Checkpoint,
    load_tokenizer,
    quiet_load_report,
    resolve_checkpoint,
)
from nlp_transfer.modeling.heads import copy_sentence_transformers_files
from nlp_transfer.outputs import check_output_dir, discard, publish, remove_intermediates, staging_dir, write_json

logger = logging.getLogger(__name__)

ADAPT_RECORD = "adapt.json"
# The run options of `train` that do not fit masked-LM pretraining: no classification metric to pick a best
# checkpoint by, no per-epoch evaluation (the held-out loss is measured before and after instead).
ADAPT_DEFAULTS = {
    "learning_rate": 5e-5,
    "num_train_epochs": 3.0,
    "eval_strategy": "no",
    "save_strategy": "no",
    "load_best_model_at_end": False,
    "metric_for_best_model": None,
    "report_to": "none",
}
MIN_HELD_OUT = 3
MIN_TEXTS = 10
UNMEASURED = "no token of the held-out texts was masked, so there is no loss to report; give more or longer texts"
"""Fewer texts leave too few held out to measure anything (2 texts gave one held-out text, and a NaN loss)."""
ADAPT_BATCH_SIZE = 8


@dataclass
class AdaptArguments:
    """What to adapt, on which text."""

    model: str = field(
        default=BUNDLED_ALIAS,
        metadata={"help": "Checkpoint to adapt: 'minilm' (bundled), a local folder or a Hub id."},
    )
    text_file: str | None = field(
        default=None,
        metadata={
            "help": "Unlabelled domain text: .txt (one text per line) or .csv/.tsv/.json/.jsonl/.parquet "
            "(the --text-column). Required."
        },
    )
    text_column: str | None = field(
        default=None, metadata={"help": "Column with the text in a table file (default: 'text' or 'sentence')."}
    )
    encoding: str = field(
        default="utf-8",
        metadata={"help": "Text encoding of --text-file (default utf-8; e.g. latin-1 or cp1252 for older files)."},
    )
    held_out_fraction: float = field(
        default=0.1, metadata={"help": "Share of the texts held out to measure masked-LM loss before and after."}
    )
    max_length: int = field(default=128, metadata={"help": "Truncate texts to this many tokens."})
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of tokens masked (BERT: 0.15)."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow a Hub checkpoint's own code to run (off unless you trust it)."}
    )

    def check(self) -> None:
        if not self.text_file:
            raise UserInputError("--text-file is required: a .txt (one text per line) or table of unlabelled text.")
        check_encoding_name(self.encoding)
        if not 0 < self.held_out_fraction < 1:
            raise UserInputError(f"--held-out-fraction must be between 0 and 1, not {self.held_out_fraction}.")
        if not 0 < self.mlm_probability < 1:
            raise UserInputError(f"--mlm-probability must be between 0 and 1, not {self.mlm_probability}.")
        if self.max_length < 8:
            raise UserInputError(f"--max-length must be at least 8 tokens, not {self.max_length}.")


@dataclass
class AdaptResult:
    """Where the adapted checkpoint went and the masked-LM figures on held-out text before and after."""

    output_dir: Path
    before: dict[str, float]
    after: dict[str, float]
    new_head: bool
    """True when the checkpoint had no masked-LM head (a plain encoder) and a new one was trained."""
    texts: dict[str, int]


def read_domain_texts(path_str: str, column: str | None, encoding: str = "utf-8") -> list[str]:
    """The distinct non-empty texts of a .txt file (one per line) or of a table file's column."""
    path = Path(path_str).expanduser()
    if not path.is_file():
        raise UserInputError(f"Text file {path} does not exist. Check the path (relative to {Path.cwd()}).")
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding=encoding).splitlines()
        except UnicodeDecodeError:  # name the line and the bytes, as for training data
            raise UserInputError(describe_read_error(path, ".txt", encoding) or f"{path} is not {encoding}.") from None
        texts = [line.strip() for line in lines]
    else:
        texts = [text.strip() for text in read_table_texts(str(path), column, None, encoding)[0]]
    texts = list(dict.fromkeys(text for text in texts if text))  # a repeated text held out is no test
    return texts


def _check_enough(texts: list[str], path: Path) -> None:
    """Refuse a text file too small to train on and still hold out enough texts to measure the loss."""
    if len(texts) < MIN_TEXTS:
        raise UserInputError(
            f"Text file {path} has {len(texts)} distinct non-empty texts; adapting needs at least {MIN_TEXTS}: some to "
            f"train on, and at least {MIN_HELD_OUT} held out to measure the masked-LM loss before and after. Give "
            "more text of your domain (one text per line)."
        )


def adapt(args: AdaptArguments, training: TransferTrainingArguments) -> AdaptResult:
    """Continue masked-LM pretraining of `args.model` on `args.text_file`; the output folder is complete or absent.

    `training` is built with ADAPT_DEFAULTS (the CLI sets them): Trainer's own options, no best-model choice.
    """
    args.check()
    if training.per_device_train_batch_size is None:  # the classifier recipe's choice does not apply to MLM
        training.per_device_train_batch_size = ADAPT_BATCH_SIZE
    if training.push_to_hub:
        raise UserInputError("adapt does not push: fine-tune the adapted checkpoint, then push the classifier.")
    target = check_output_dir(
        training.given_output_dir,
        training.overwrite_output_dir,
        "the adapted checkpoint",
        inputs={"--text-file": args.text_file, "--model": args.model},
    )
    with folder_lock(target):
        return _adapt_into(target, args, training)


def _adapt_into(target: Path, args: AdaptArguments, training: TransferTrainingArguments) -> AdaptResult:
    """Read, train and publish, holding the output folder's lock."""
    checkpoint = resolve_checkpoint(args.model, trust_remote_code=args.trust_remote_code)
    texts = read_domain_texts(args.text_file, args.text_column, args.encoding)
    _check_enough(texts, Path(args.text_file).expanduser())
    train_texts, held_out = _hold_out(texts, args.held_out_fraction, training.seed)
    tokenizer = load_tokenizer(checkpoint)
    model, new_head = _masked_lm_model(checkpoint)
    encode = _encoder(tokenizer, args.max_length)
    train_set, held_out_set = encode(train_texts), encode(held_out)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.mlm_probability)

    staging = staging_dir(target)
    try:
        training.output_dir = str(staging)
        trainer = Trainer(
            model=model,
            args=training,
            train_dataset=train_set,
            eval_dataset=held_out_set,
            data_collator=collator,
            processing_class=tokenizer,
        )
        before = _masked_lm_figures(trainer, training.seed)
        logger.info("Held-out masked-LM loss before: %s", _figures_text(before))
        trainer.train()
        after = _masked_lm_figures(trainer, training.seed)
        logger.info("Held-out masked-LM loss after: %s", _figures_text(after))
        trainer.save_model(str(staging))
        remove_intermediates(staging)
        copied = copy_sentence_transformers_files(checkpoint, staging)
        if copied:
            logger.info(
                "Copied the checkpoint's sentence-transformers files (%s): train reads it the same way.", copied
            )
        counts = {"train": len(train_texts), "held_out": len(held_out)}
        record = _record(args, checkpoint, before, after, new_head, counts)
        write_json(staging / ADAPT_RECORD, record)
        publish(staging, target, command="adapt", overwrite=training.overwrite_output_dir)
    except BaseException:
        discard(staging)
        raise
    finally:
        training.output_dir = str(target)
    return AdaptResult(target, before, after, new_head, counts)


def _hold_out(texts: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(seed).permutation(len(texts))
    held = min(max(MIN_HELD_OUT, round(len(texts) * fraction)), len(texts) - 1)
    chosen = set(order[:held].tolist())
    return [t for i, t in enumerate(texts) if i not in chosen], [t for i, t in enumerate(texts) if i in chosen]


def _masked_lm_model(checkpoint: Checkpoint) -> tuple[Any, bool]:
    """The checkpoint with a masked-LM head; a plain encoder (the bundled MiniLM is a `BertModel`) gets a new one
    whose decoder is tied to the input embeddings, which the log says."""
    try:
        with quiet_load_report():  # the missing masked-LM head is said below, in one line
            model, info = AutoModelForMaskedLM.from_pretrained(
                checkpoint.source, output_loading_info=True, **checkpoint.pretrained_kwargs()
            )
    except (OSError, ValueError) as error:
        raise UserInputError(
            f"Could not load {checkpoint.source} as a masked language model: {str(error).splitlines()[0]}. "
            "adapt needs an encoder with a masked-LM objective (BERT, RoBERTa, DeBERTa, ...)."
        ) from None
    missing = list(info.get("missing_keys", []))
    if not missing:
        return model, False
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    logger.warning(
        "%s has no masked-LM head (%d weights missing, e.g. %s): a new head is initialised%s and trained here.",
        checkpoint.hub_id or checkpoint.source,
        len(missing),
        missing[0],
        ", its decoder tied to the input embeddings" if tied else "",
    )
    return model, True


def _encoder(tokenizer: Any, max_length: int) -> Any:
    def encode(texts: list[str]) -> Dataset:
        dataset = Dataset.from_dict({"text": texts})
        return dataset.map(
            lambda batch: tokenizer(
                batch["text"], truncation=True, max_length=max_length, return_special_tokens_mask=True
            ),
            batched=True,
            remove_columns=["text"],
            desc="Tokenizing",
        )

    return encode


def _masked_lm_figures(trainer: Trainer, seed: int) -> dict[str, float]:
    """Held-out masked-LM loss and perplexity; the masks are drawn with the same seed every time, so that the
    figures before and after training score the same masked positions."""
    set_seed(seed)
    loss = float(trainer.evaluate(metric_key_prefix="held_out")["held_out_loss"])
    if not math.isfinite(loss):  # no position of the held-out texts was masked: nothing was measured
        return {"loss": None, "perplexity": None, "reason": UNMEASURED}
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def _record(
    args: AdaptArguments,
    checkpoint: Checkpoint,
    before: dict[str, float],
    after: dict[str, float],
    new_head: bool,
    counts: dict[str, int],
) -> dict[str, Any]:
    return {
        "base_model": checkpoint.hub_id or Path(checkpoint.source).name,
        "objective": "masked language modelling",
        "mlm_probability": args.mlm_probability,
        "max_length": args.max_length,
        "texts": counts,
        "text_file": Path(args.text_file or "").name,
        "new_masked_lm_head": new_head,
        "held_out_before": before,
        "held_out_after": after,
    }


def _figures_text(figures: dict[str, Any]) -> str:
    if figures["loss"] is None:
        return f"undefined ({figures['reason']})"
    return f"{figures['loss']:.4f} (perplexity {figures['perplexity']:.1f})"


def summary(result: AdaptResult) -> str:
    """The lines `nlp-transfer adapt` prints."""
    before, after = result.before, result.after
    return "\n".join(
        [
            f"Held-out masked-LM loss {_figures_text(before)} -> {_figures_text(after)} "
            f"on {result.texts['held_out']} texts",
            f"Adapted checkpoint in {result.output_dir}: nlp-transfer train --model {result.output_dir} ...",
            json.dumps({"before": before, "after": after}),
        ]
    )
