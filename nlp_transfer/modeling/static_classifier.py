"""A static-embedding classifier: the mean of per-token vectors, then a small head. No encoder.

What `nlp-transfer distill --student static` trains. Its token vectors start as Model2Vec's distillation of a
fine-tuned teacher's encoder (one forward pass per vocabulary token, PCA, SIF weights) and are then trained
with the head; at prediction time a text costs a tokenizer call, a table lookup and one small matrix product,
which is why it serves orders of magnitude faster than a transformer on a CPU.

It reads texts as Model2Vec's `StaticModel.encode` does: no special tokens, unknown tokens dropped, the
mean of the remaining vectors, then unit length. The classes are a transformers config and model with their own
`model_type`, registered with `AutoConfig` and `AutoModelForSequenceClassification` when this module is
imported (as `import nlp_transfer` does), so a folder saves and loads as safetensors through `save_pretrained`
and `from_pretrained` like every other trained folder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BatchEncoding,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

STATIC_MODEL_TYPE = "nlp-transfer-static"


class StaticClassifierConfig(PretrainedConfig):
    """Vocabulary and vector sizes, the head's hidden width (0: a linear head) and the ids reading skips."""

    model_type = STATIC_MODEL_TYPE

    def __init__(
        self,
        vocab_size: int = 1,
        hidden_size: int = 256,
        head_hidden_size: int = 512,
        normalize: bool = True,
        unk_token_id: int | None = None,
        pad_token_id: int | None = 0,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.head_hidden_size = head_hidden_size
        self.normalize = normalize
        self.unk_token_id = unk_token_id
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class StaticForSequenceClassification(PreTrainedModel):
    """Token vectors averaged over a text's known tokens, normalised, then the head: logits per label."""

    config_class = StaticClassifierConfig
    base_model_prefix = "static"
    main_input_name = "input_ids"

    def __init__(self, config: StaticClassifierConfig) -> None:
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        width = config.head_hidden_size
        if width:
            self.head = nn.Sequential(
                nn.Linear(config.hidden_size, width), nn.ReLU(), nn.Linear(width, config.num_labels)
            )
        else:
            self.head = nn.Sequential(nn.Linear(config.hidden_size, config.num_labels))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # The vectors come from Model2Vec (set_vectors); only the head starts from random weights.
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    def set_vectors(self, vectors: torch.Tensor) -> None:
        """Take the distilled token vectors (vocab_size x hidden_size) as the starting embeddings."""
        if tuple(vectors.shape) != tuple(self.embeddings.weight.shape):
            raise ValueError(
                f"vectors of shape {tuple(vectors.shape)} for a {tuple(self.embeddings.weight.shape)} table"
            )
        with torch.no_grad():
            self.embeddings.weight.copy_(vectors.to(self.embeddings.weight.dtype))

    def text_vectors(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One vector per text: the mean of its known tokens' vectors, unit length when the config says so."""
        keep = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        if self.config.unk_token_id is not None:
            keep = keep & (input_ids != self.config.unk_token_id)
        weights = keep.to(self.embeddings.weight.dtype)
        # One embedding_bag call (a weighted sum per text) instead of a (texts x tokens x dims) gather and a sum:
        # at a static model's cost, each extra tensor operation shows in its texts per second.
        summed = nn.functional.embedding_bag(input_ids, self.embeddings.weight, per_sample_weights=weights, mode="sum")
        vectors = summed / weights.sum(dim=1, keepdim=True).clamp(min=1.0)  # only unknown tokens: the zero vector
        if self.config.normalize:
            vectors = nn.functional.normalize(vectors, dim=-1)
        return vectors

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **unused: Any,  # token_type_ids from the tokenizer: a static model has no segments
    ) -> SequenceClassifierOutput:
        logits = self.head(self.text_vectors(input_ids, attention_mask))
        loss = None if labels is None else _supervised_loss(self.config, logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def static_batch(tokenizer: Any, texts: list[str], max_length: int) -> BatchEncoding:
    """Padded input ids and attention mask of `texts` for a static model: what `tokenizer(texts, truncation=True,
    max_length=max_length, padding=True)` gives (its tokenizer adds no special tokens), three times faster.

    A static model costs so little that the tokenizer is most of its time: the `tokenizers` backend's
    `encode_batch_fast` (no character offsets, as Model2Vec encodes) skips what the transformers wrapper adds."""
    backend = tokenizer.backend_tokenizer
    backend.no_truncation()  # the wrapper leaves its last call's settings on the backend
    backend.no_padding()
    ids = [encoding.ids[:max_length] for encoding in backend.encode_batch_fast(texts, add_special_tokens=False)]
    width = max((len(row) for row in ids), default=0)
    input_ids = np.full((len(ids), width), tokenizer.pad_token_id or 0, dtype=np.int64)
    attention_mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, values in enumerate(ids):
        input_ids[row, : len(values)] = values
        attention_mask[row, : len(values)] = 1
    return BatchEncoding({"input_ids": input_ids, "attention_mask": attention_mask}, tensor_type="pt")


def _supervised_loss(config: PretrainedConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss transformers' own sequence classifiers use for each problem type."""
    if config.problem_type == "regression" or config.num_labels == 1:
        return nn.functional.mse_loss(logits.squeeze(-1), labels.float().view(-1))
    if config.problem_type == "multi_label_classification":
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
    return nn.functional.cross_entropy(logits, labels.long().view(-1))


# save_pretrained copies this file (numpy, torch and transformers only) into every static folder, with an auto_map:
# pipeline(..., trust_remote_code=True) loads a static student where nlp-transfer is not installed.
StaticClassifierConfig.register_for_auto_class("AutoConfig")
StaticForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")


def register_static_classifier() -> None:
    """Make `AutoConfig` / `AutoModelForSequenceClassification` load a static folder (idempotent)."""
    AutoConfig.register(STATIC_MODEL_TYPE, StaticClassifierConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(StaticClassifierConfig, StaticForSequenceClassification, exist_ok=True)


register_static_classifier()
