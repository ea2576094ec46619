"""One view of every supported architecture: embeddings, encoder layers (bottom to top), pooler, task head.

Strategies freeze, adapt and give learning rates by *depth*, and every BERT-family model spells its parts
differently (`bert.encoder.layer`, `distilbert.transformer.layer`, `model.layers`, ALBERT's shared layer
groups). This module is the one place that knows those spellings. Two things per architecture:

- `ArchitectureSpec`: static facts for a `config.model_type` (default LoRA targets, the new head modules
  that peft must train and save, whether layers share weights).
- `ArchitectureView`: the live modules of one model, split into four parts that partition its parameters:
  `embeddings` (depth 0), `layers` (depth 1..L), `pooler` and `head` (depth L+1).

Decisions per architecture (read from the transformers 5 model classes and the published checkpoints):

- bert (and MiniLM): LoRA `query`, `value`; head `classifier`; pooler `bert.pooler` (pretrained with NSP;
  the bundled all-MiniLM-L6-v2 ships its weights).
- distilbert: LoRA `q_lin`, `v_lin`; head `pre_classifier` and `classifier`, both new (DistilBERT
  checkpoints have no pooler; peft's SEQ_CLS default saves only `classifier`); no pooler.
- roberta, xlm-roberta, electra: LoRA `query`, `value`; head `classifier` (a new dense + out_proj head);
  no pooler (the classification models are built without one).
- deberta-v2 (DeBERTa v2 and v3): LoRA `query_proj`, `value_proj`; head `pooler` (the ContextPooler, new:
  checkpoints carry no weights for it, peft #2171) and `classifier`; no pretrained pooler.
- albert: LoRA `query`, `value`; head `classifier`; pooler `albert.pooler` (pretrained with SOP); one
  layer group shared by all depths.
- modernbert: LoRA `Wqkv` (the fused query/key/value projection); head `classifier`; pooler `head` (dense +
  norm, loaded from the checkpoint's masked-LM head, as a BERT pooler is); `model.final_norm` joins the
  view's head (below).

Parts outside the obvious modules:

- ELECTRA's `embeddings_project` and ALBERT's `encoder.embedding_hidden_mapping_in` project the
  embeddings to the hidden size before layer 1: they are part of the embeddings (depth 0), so freezing
  the embeddings freezes the whole input side.
- DeBERTa-v2/v3 with relative attention keeps `encoder.rel_embeddings` (a table of relative positions read
  by every layer) and `encoder.LayerNorm` (which only normalises that table) outside the layers: they are
  embeddings of positions, so they go with the embeddings, as BERT's absolute position embeddings do.
  DeBERTa-v2-xlarge/xxlarge's `encoder.conv` (`conv_kernel_size > 0`, none in v3) mixes the embedding output
  into layer 1's output; it lives in no layer module, so it goes with the embeddings too.
- ModernBERT's `final_norm` normalises the top layer's output, outside every layer. It is put in the view's
  `head`: a per-channel scale (no bias by default) that is cheap to train and save with the classifier, and
  the pooler slot is taken by the pretrained `head` module. `spec.head_module_names` lists only the new
  `classifier`; the view's `head` adds `final_norm`.
- ALBERT runs its shared layer group(s) at several depths; each group's parameters get the *highest* depth
  that uses them (depth L with the default single group). A weight used by the top layer must train when
  the top layer trains, and at the top layer's learning rate; "freeze the lower layers" cannot freeze a
  weight the top layer also uses.

`view.layers[i]`, `view.pooler` and the modules in `view.head` are modules registered in the model, so a
strategy can name them (`modules_to_save`). `view.embeddings` is the model's embeddings module, or, when the
input side has several modules (ELECTRA with a projection, ALBERT, DeBERTa with relative attention), an
`nn.ModuleList` grouping them that is *not* registered in the model: use its parameters, not its name. The
parts are for grouping parameters, not for calling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from torch import nn
from transformers import PreTrainedModel

from nlp_transfer.errors import UserInputError

SUPPORTED_MODEL_TYPES: tuple[str, ...] = (
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "deberta-v2",
    "electra",
    "albert",
    "modernbert",
)
"""The `config.model_type`s this package can transfer from (MiniLM checkpoints are `bert`)."""

POOLED_MODEL_TYPE_PREFIX = "nlp-transfer-pooled-"
"""`model_type` prefix of the pooled classifiers of `heads.py` (mean/max/cls pooling and one new linear head)."""
POOLED_HEAD_NAMES: tuple[str, ...] = ("classifier",)


def pooled_model_type(model_type: str) -> str:
    """The model_type of the pooled classifier built on `model_type` (`bert` -> `nlp-transfer-pooled-bert`)."""
    return POOLED_MODEL_TYPE_PREFIX + model_type


def encoder_model_type(model_type: str) -> str:
    """The encoder architecture of a model_type: itself, or the one a pooled classifier is built on."""
    return model_type.removeprefix(POOLED_MODEL_TYPE_PREFIX)


@dataclass(frozen=True)
class ArchitectureSpec:
    """Static facts about one `config.model_type`, the same for every checkpoint of that type."""

    model_type: str
    lora_target_modules: tuple[str, ...]
    """Default LoRA targets: the attention query and value projections (module-name suffixes, as peft matches)."""
    head_module_names: tuple[str, ...]
    """Attributes of the *ForSequenceClassification model that are new (absent from pretrained checkpoints):
    they must train, and peft must save them (`modules_to_save`), or they reload random."""
    shares_layer_weights: bool = False
    """True when one set of layer weights serves several depths (ALBERT)."""


_SPECS: dict[str, ArchitectureSpec] = {
    spec.model_type: spec
    for spec in (
        ArchitectureSpec("bert", ("query", "value"), ("classifier",)),
        # pre_classifier is a new Linear too: DistilBERT checkpoints have no pooler.
        ArchitectureSpec("distilbert", ("q_lin", "v_lin"), ("pre_classifier", "classifier")),
        ArchitectureSpec("roberta", ("query", "value"), ("classifier",)),
        ArchitectureSpec("xlm-roberta", ("query", "value"), ("classifier",)),
        # The ContextPooler is new: DeBERTa checkpoints carry no `pooler.*` weights (peft #2171).
        ArchitectureSpec("deberta-v2", ("query_proj", "value_proj"), ("pooler", "classifier")),
        ArchitectureSpec("electra", ("query", "value"), ("classifier",)),
        ArchitectureSpec("albert", ("query", "value"), ("classifier",), shares_layer_weights=True),
        # Wqkv is the fused query/key/value projection: LoRA on it adapts all three.
        ArchitectureSpec("modernbert", ("Wqkv",), ("classifier",)),
    )
}


def architecture_spec(model_type: str) -> ArchitectureSpec:
    """The spec of `model_type`; a `UserInputError` naming the supported types when there is none.

    A pooled classifier (heads.py) has its encoder's spec with one new head module, `classifier`.
    """
    encoder_type = encoder_model_type(model_type)
    spec = _SPECS.get(encoder_type)
    if spec is not None and encoder_type != model_type:
        return replace(spec, head_module_names=POOLED_HEAD_NAMES)
    if spec is None:
        raise UserInputError(
            f"Model type {model_type!r} is not supported. Supported model types: {', '.join(SUPPORTED_MODEL_TYPES)} "
            "(MiniLM checkpoints are 'bert'). Choose a checkpoint of one of these architectures."
        )
    return spec


@dataclass
class ArchitectureView:
    """The live modules of one model, split into parts that partition its parameters.

    `layers` runs bottom to top; for ALBERT entry i is the shared layer group used at depth i+1 (the same
    object at several entries). See the module docstring for what goes where, per architecture.
    """

    spec: ArchitectureSpec
    embeddings: nn.Module
    """Depth 0: token/position/type embeddings and whatever projects them to the hidden size."""
    layers: list[nn.Module]
    """Depths 1..L: the encoder layers, bottom to top."""
    pooler: nn.Module | None
    """Depth L+1: the pretrained module between the top layer and the head (BERT/ALBERT pooler, ModernBERT
    `head`), or None."""
    head: list[nn.Module]
    """Depth L+1: the new task head (`spec.head_module_names`), plus other top modules (ModernBERT final_norm)."""

    def _parts(self) -> list[tuple[str, int, nn.Module]]:
        """(part, depth, module) for every module of the view; a module may appear at several depths."""
        top = len(self.layers) + 1
        parts: list[tuple[str, int, nn.Module]] = [("embeddings", 0, self.embeddings)]
        parts += [("layers", depth, layer) for depth, layer in enumerate(self.layers, start=1)]
        if self.pooler is not None:
            parts.append(("pooler", top, self.pooler))
        parts += [("head", top, module) for module in self.head]
        return parts

    def parameter_depths(self, model: nn.Module) -> dict[str, int]:
        """Every named parameter of `model` -> depth: 0 embeddings, 1..L encoder layer, L+1 pooler and head.

        `model` is the model this view was made from, or its peft wrapper: parameters are matched by
        identity, so prefixed names, LoRA matrices and `modules_to_save` copies land at the depth of the
        module they sit in. A weight shared by several depths (ALBERT) gets the highest. Raises ValueError
        when a parameter belongs to no part, or to two parts, so no architecture can skip one silently.
        """
        depth_of: dict[int, int] = {}
        part_of: dict[int, str] = {}
        for part, depth, module in self._parts():
            for parameter in module.parameters():
                key = id(parameter)
                if part_of.setdefault(key, part) != part:
                    raise ValueError(
                        f"A parameter of this {self.spec.model_type} model is in both the {part_of[key]} and "
                        f"the {part} of its architecture view: the view is wrong."
                    )
                depth_of[key] = max(depth, depth_of.get(key, depth))
        depths: dict[str, int] = {}
        unassigned: list[str] = []
        for name, parameter in model.named_parameters():
            depth = depth_of.get(id(parameter))
            if depth is None:
                unassigned.append(name)
            else:
                depths[name] = depth
        if unassigned:
            shown = ", ".join(unassigned[:10]) + (f" and {len(unassigned) - 10} more" if len(unassigned) > 10 else "")
            raise ValueError(
                f"{len(unassigned)} parameter(s) of this {self.spec.model_type} model belong to no part "
                f"(embeddings, layers, pooler, head) of its architecture view: {shown}. "
                "nlp_transfer/modeling/layers.py must place them."
            )
        return depths


_Located = tuple[list[nn.Module], list[nn.Module], nn.Module | None, list[nn.Module]]
"""(embedding modules, layers bottom to top, pooler, extra head modules beyond spec.head_module_names)."""


def _present(*modules: nn.Module | None) -> list[nn.Module]:
    return [module for module in modules if module is not None]


def _locate_bert_like(model: PreTrainedModel) -> _Located:
    """BERT, RoBERTa, XLM-R, ELECTRA: `<base>.embeddings`, `<base>.encoder.layer`, optional pooler."""
    base = getattr(model, model.base_model_prefix)
    embeddings = _present(base.embeddings, getattr(base, "embeddings_project", None))
    return embeddings, list(base.encoder.layer), getattr(base, "pooler", None), []


def _locate_distilbert(model: PreTrainedModel) -> _Located:
    base = model.distilbert
    return [base.embeddings], list(base.transformer.layer), None, []


def _locate_deberta_v2(model: PreTrainedModel) -> _Located:
    base = model.deberta
    encoder = base.encoder
    embeddings = _present(
        base.embeddings,
        getattr(encoder, "rel_embeddings", None),
        getattr(encoder, "LayerNorm", None),
        getattr(encoder, "conv", None),
    )
    return embeddings, list(encoder.layer), None, []


def _locate_albert(model: PreTrainedModel) -> _Located:
    base = model.albert
    encoder = base.encoder
    config = model.config
    # As AlbertTransformer.forward picks the group for depth i.
    layers_per_group = config.num_hidden_layers / config.num_hidden_groups
    layers = [encoder.albert_layer_groups[int(i / layers_per_group)] for i in range(config.num_hidden_layers)]
    return [base.embeddings, encoder.embedding_hidden_mapping_in], layers, base.pooler, []


def _locate_modernbert(model: PreTrainedModel) -> _Located:
    base = model.model
    # A pooled classifier (heads.py) has no `head`: its pooling reads final_norm's output directly.
    return [base.embeddings], list(base.layers), getattr(model, "head", None), [base.final_norm]


_LOCATORS: dict[str, Callable[[PreTrainedModel], _Located]] = {
    "bert": _locate_bert_like,
    "distilbert": _locate_distilbert,
    "roberta": _locate_bert_like,
    "xlm-roberta": _locate_bert_like,
    "deberta-v2": _locate_deberta_v2,
    "electra": _locate_bert_like,
    "albert": _locate_albert,
    "modernbert": _locate_modernbert,
}


def _unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside peft wrappers (`PeftModel.get_base_model()`), or `model` itself."""
    while hasattr(model, "get_base_model"):
        inner = model.get_base_model()
        if inner is model:
            break
        model = inner
    return model


def architecture_view(model: nn.Module) -> ArchitectureView:
    """The view of a *ForSequenceClassification model of a supported type, or of its peft wrapper.

    Raises `UserInputError` for an unsupported model type, TypeError for a model without the classification
    head of its architecture (a bare encoder, a masked-LM model), and ValueError if the view would leave
    a parameter of `model` unassigned.
    """
    base = _unwrap(model)
    config = getattr(base, "config", None)
    if config is None:
        raise TypeError(f"architecture_view needs a transformers model, got {type(base).__name__}.")
    spec = architecture_spec(config.model_type)
    missing = [name for name in spec.head_module_names if not isinstance(getattr(base, name, None), nn.Module)]
    if missing:
        raise TypeError(
            f"architecture_view needs a {spec.model_type} *ForSequenceClassification model; "
            f"{type(base).__name__} has no {', '.join(missing)}."
        )
    # The pooled classifiers keep the encoder under the architecture's own attribute: same locator.
    embeddings, layers, pooler, extra_head = _LOCATORS[spec.model_type](base)
    view = ArchitectureView(
        spec=spec,
        embeddings=embeddings[0] if len(embeddings) == 1 else nn.ModuleList(embeddings),
        layers=layers,
        pooler=pooler,
        head=[getattr(base, name) for name in spec.head_module_names] + extra_head,
    )
    view.parameter_depths(model)  # fail here, not in a strategy, if a parameter has no part
    return view
