"""The student before training: which kind (`--student layers:K` or `static`), and how it is built.

`layers:K` keeps the teacher's embeddings, K of its layers (every other one, as DistilBERT) and its head
(`modeling.depth`). `static` asks Model2Vec (`model2vec.distill.distill_from_model`, the optional extra
`nlp-transfer[distill]`) for one vector per vocabulary token from the teacher's fine-tuned encoder, and puts
them under a new head (`modeling.static_classifier`). With `--student-init base` both are built from the
teacher's pretrained checkpoint instead: the student without the teacher, to measure what the teacher adds.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast
from transformers.utils import logging as transformers_logging

from nlp_transfer.errors import UserInputError
from nlp_transfer.modeling.checkpoints import resolve_checkpoint
from nlp_transfer.modeling.depth import fewer_layers, spread_layers
from nlp_transfer.modeling.layers import architecture_spec
from nlp_transfer.modeling.static_classifier import StaticClassifierConfig, StaticForSequenceClassification

logger = logging.getLogger(__name__)

STATIC_MAX_LENGTH = 512
"""Tokens a static student reads per text (Model2Vec's default); its cost grows with it only linearly."""


@dataclass(frozen=True)
class StudentSpec:
    """`layers:K` (kind 'layers', K layers) or `static` (kind 'static')."""

    kind: str
    layers: int | None = None

    @classmethod
    def parse(cls, text: str) -> StudentSpec:
        value = text.strip().lower()
        if value == "static":
            return cls("static")
        found = re.fullmatch(r"layers:(\d+)", value)
        if found and int(found.group(1)) >= 1:
            return cls("layers", int(found.group(1)))
        raise UserInputError(
            f"--student {text!r} is not a student: give 'layers:K' (K of the teacher's layers, e.g. layers:3) or "
            "'static' (static token vectors from Model2Vec, the cheapest to serve)."
        )

    def __str__(self) -> str:
        return "static" if self.kind == "static" else f"layers:{self.layers}"


@dataclass
class Student:
    """A student model ready to train, the tokenizer it reads with, and how it was made (for the card)."""

    model: Any
    tokenizer: Any
    max_length: int
    method: dict[str, Any]
    long_text: str = "truncate-head"
    """How it reads (and is trained on) texts longer than max_length: the teacher's way, except `chunk`, whose
    window-by-window reading the student's training does not reproduce: it reads the head instead."""


def build_student(
    spec: StudentSpec,
    teacher: Any,
    init: str,
    base_model: str | None,
    pca_dims: int,
    head_hidden_size: int,
    quiet: bool = False,
) -> Student:
    """The untrained student of `spec` from the teacher classifier (`init='teacher'`) or its base checkpoint;
    `quiet` hides Model2Vec's progress bar too."""
    source = teacher.model if init == "teacher" else _base_classifier(teacher, base_model)
    if spec.kind == "layers":
        total = source.config.num_hidden_layers
        keep = spread_layers(total, spec.layers or 0)
        model = fewer_layers(source, keep)
        method = {"student": str(spec), "init": init, "kept_layers": keep, "teacher_layers": total}
        if architecture_spec(source.config.model_type).shares_layer_weights:
            method["kept_layers"] = f"the shared layer, {len(keep)} times"  # ALBERT has one layer's weights
        long_text = "truncate-head" if teacher.long_text == "chunk" else teacher.long_text
        return Student(model, teacher.tokenizer, teacher.max_length, method, long_text)
    with _model2vec_progress(quiet):
        return _static_student(source, teacher, init, pca_dims, head_hidden_size)


@contextmanager
def _model2vec_progress(quiet: bool) -> Iterator[None]:
    """Model2Vec's own bar ('Encoding tokens') follows --quiet. Its functions take no switch for it, so, while the
    student is built, the tqdm its inference module calls is one made with `disable=True`."""
    try:
        import model2vec.distill.inference as inference
    except ImportError:  # no model2vec: _static_student says how to install it
        inference = None
    original = getattr(inference, "tqdm", None)
    if not quiet or original is None:
        yield
        return
    inference.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        inference.tqdm = original


def _base_classifier(teacher: Any, base_model: str | None) -> Any:
    """The teacher's architecture (its head, pooling and labels) on its pretrained checkpoint's weights: the same
    student without what the teacher learnt, to measure what the teacher adds."""
    if not base_model:
        raise UserInputError(
            "--student-init base needs the teacher's base checkpoint, which its metrics.json does "
            "not name; distil from the teacher (the default) instead."
        )
    checkpoint = resolve_checkpoint(base_model)
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # the head is new by design: its "newly initialized" report is noise
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            checkpoint.source, config=copy.deepcopy(teacher.model.config), **checkpoint.pretrained_kwargs()
        )
    finally:
        transformers_logging.set_verbosity(verbosity)


def _static_student(source: Any, teacher: Any, init: str, pca_dims: int, head_hidden_size: int) -> Student:
    try:
        from model2vec.distill import distill_from_model
    except ImportError as error:
        raise UserInputError(
            f"--student static needs the model2vec library ({error.name or 'model2vec'} is missing): "
            "pip install 'nlp-transfer[distill]'"
        ) from None
    # The encoder under the head, as a sentence transformer would be; a copy: Model2Vec reshapes its embeddings.
    encoder = copy.deepcopy(source.base_model)
    hidden = encoder.config.hidden_size
    logger.info("Model2Vec: one vector per token of the %s's vocabulary (a forward pass each)", init)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # one forward pass per vocabulary token
    static = distill_from_model(
        encoder, teacher.tokenizer, pca_dims=min(pca_dims, hidden), device=device, quantize_to="float32"
    )
    vectors = torch.as_tensor(static.embedding, dtype=torch.float32)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=static.tokenizer, **_special_tokens(static))
    tokenizer.model_max_length = STATIC_MAX_LENGTH
    config = StaticClassifierConfig(
        vocab_size=vectors.shape[0],
        hidden_size=vectors.shape[1],
        head_hidden_size=head_hidden_size,
        normalize=bool(static.config.get("normalize", True)),
        unk_token_id=static.unk_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        num_labels=teacher.model.config.num_labels,
        id2label=dict(teacher.model.config.id2label),
        label2id=dict(teacher.model.config.label2id),
        problem_type=teacher.model.config.problem_type,
    )
    model = StaticForSequenceClassification(config)
    model.set_vectors(vectors)
    method = {
        "student": "static",
        "init": init,
        "model2vec": _version("model2vec"),
        "pca_dims": int(vectors.shape[1]),
        "vocabulary": int(vectors.shape[0]),
    }
    return Student(model, tokenizer, STATIC_MAX_LENGTH, method)


def _special_tokens(static: Any) -> dict[str, str]:
    """The unknown and padding tokens of Model2Vec's tokenizer, so the wrapper pads and skips as it does."""
    vocabulary = static.tokenizer.get_vocab()
    found = {}
    for key, candidates in (("unk_token", ("[UNK]", "<unk>")), ("pad_token", ("[PAD]", "<pad>"))):
        name = next((token for token in candidates if token in vocabulary), None)
        if name is not None:
            found[key] = name
    if "pad_token" not in found and "unk_token" in found:
        found["pad_token"] = found["unk_token"]  # padding is masked out anyway
    return found


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
