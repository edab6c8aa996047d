"""BERT checkpoints in the Hugging Face layout: our tensor names <-> transformers'.

Tensor names are transformers' (`bert.encoder.layer.0.attention.self.query.weight`, ...), so
what we save loads into transformers' matching class and the other way round. Our modules use
their own, shorter names and a fused Q/K/V projection; the table below translates between the two.

Loading is forgiving where transformers is (old `LayerNorm.gamma/beta` names, a `bert.` prefix
present or absent, task heads missing -> freshly initialised, heads of another task -> dropped)
and strict everywhere else: missing or unexpected encoder tensors and wrong shapes are errors
that name the tensors. Reading files and the shared checks are `models/hub.py`'s.

The entity embedding of an entity-aware BERT (`entity_type_vocab_size` > 0) is saved as
`bert.embeddings.entity_type_embeddings.weight`. A checkpoint without it (any Hugging Face
BERT) loads into an entity-aware model with the table at zero, so the model starts as that
checkpoint. transformers' BERT has no such table: it drops the tensor as an unused weight (with a
warning) and ignores `entity_type_vocab_size` in config.json, so a saved entity-aware model loads
there as a plain BERT without its entity information (its outputs then differ from ours once the
table has been trained). The entity markers `[ENT]`/`[/ENT]` are ordinary added tokens and rows of
the word embeddings, which transformers keeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hanformer.errors import CheckpointError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.model import BertModel, BertPreTrainedModel
from hanformer.models.common.name_table import NameTable
from hanformer.models.hub import (
    apply_overrides,
    check_weights_match,
    file_facts,
    header_tensors,
    listing,
    parameters_by_dtype,
    require_config,
    require_floating,
    shape_keys,
    tensor_shapes,
)

# (our name, transformers' name); "{i}" stands for a layer number. Names not listed are equal.
_NAME_MAP = [
    ("embeddings.norm.", "embeddings.LayerNorm."),
    ("layers.{i}.attention.out.", "encoder.layer.{i}.attention.output.dense."),
    ("layers.{i}.attention_norm.", "encoder.layer.{i}.attention.output.LayerNorm."),
    ("layers.{i}.ffn.up.", "encoder.layer.{i}.intermediate.dense."),
    ("layers.{i}.ffn.down.", "encoder.layer.{i}.output.dense."),
    ("layers.{i}.ffn_norm.", "encoder.layer.{i}.output.LayerNorm."),
    ("final_norm.", "encoder.final_layer_norm."),  # pre-LN only; transformers' BERT has no such layer
    ("mlm.transform.", "cls.predictions.transform.dense."),
    ("mlm.norm.", "cls.predictions.transform.LayerNorm."),
    ("mlm.bias", "cls.predictions.bias"),
    ("nsp.", "cls.seq_relationship."),
]
_QKV_OURS = re.compile(r"^(.*)layers\.(\d+)\.attention\.qkv\.(weight|bias)$")
_QKV_HF = re.compile(r"^(.*)encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)$")
# Tensors that belong to a task head (or the pooler, which only heads use): may be absent or extra.
_HEAD_PREFIXES = ("mlm.", "nsp.", "classifier.", "qa_outputs.", "pooler.", "bert.pooler.")
# Stored by some checkpoints but not learned: integer buffers, and the tied copy of the word embeddings.
_DERIVED = ("embeddings.position_ids", "embeddings.token_type_ids", "cls.predictions.decoder.weight")
# Starts at zero when absent (see the module docstring): neither a missing encoder tensor nor a head.
_ZERO_WHEN_ABSENT = ("embeddings.entity_type_embeddings.weight",)
# Layer numbers in transformers' BERT tensor names (compared with num_hidden_layers).
_LAYER_NUMBER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")
# Which config.json keys decide a tensor's shape (named when the shape is wrong); default hidden_size.
_SHAPE_KEYS = [
    (re.compile(r"word_embeddings"), "vocab_size, hidden_size"),
    (re.compile(r"position_embeddings"), "max_position_embeddings, hidden_size"),
    (re.compile(r"token_type_embeddings"), "type_vocab_size, hidden_size"),
    (re.compile(r"entity_type_embeddings"), "entity_type_vocab_size, hidden_size"),
    (re.compile(r"predictions\.bias"), "vocab_size"),
    (re.compile(r"intermediate\.dense|layer\.\d+\.output\.dense"), "intermediate_size, hidden_size"),
    (re.compile(r"classifier|qa_outputs"), "num_labels, hidden_size"),
]


_NAMES = NameTable(_NAME_MAP, anywhere=True)


def _to_hf(key: str) -> str:
    return _NAMES.to_hf(key) or key


def _from_hf(key: str) -> str:
    return _NAMES.from_hf(key) or key

# --- name translation -----------------------------------------------------------------------

def to_hf_state_dict(model: BertPreTrainedModel, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """Our state dict under transformers' names, Q/K/V split; tied decoder weight not repeated."""
    out: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        value = value.detach().to(dtype) if dtype is not None and value.is_floating_point() else value.detach()
        m = _QKV_OURS.match(key)
        if m:
            prefix, layer, kind = m.groups()
            for name, part in zip(("query", "key", "value"), value.chunk(3, dim=0), strict=True):
                out[f"{prefix}encoder.layer.{layer}.attention.self.{name}.{kind}"] = part.contiguous()
        else:
            out[_to_hf(key)] = value.contiguous()
    return out


def _drop_legacy(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Old names -> current names; drop tensors that are derived, not learned."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
        key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
        if key.endswith(_DERIVED):
            continue
        out[key] = value
    # Some checkpoints store the MLM bias only as decoder.bias.
    if "cls.predictions.decoder.bias" in out:
        bias = out.pop("cls.predictions.decoder.bias")
        out.setdefault("cls.predictions.bias", bias)
    return out


def from_hf_state_dict(state: dict[str, Tensor], model: BertPreTrainedModel,
                       source: str = "checkpoint") -> tuple[dict[str, Tensor], list[str], list[str]]:
    """transformers-named tensors -> our names for `model`.

    Returns (state dict, head tensors the model wants but the checkpoint lacks,
    head tensors of the checkpoint this model has no use for).
    """
    state = _drop_legacy(state)
    require_floating(state, source)
    is_base = isinstance(model, BertModel)
    has_prefix = any(k.startswith("bert.") for k in state)
    head_keys = ("cls.", "classifier.", "qa_outputs.")
    if is_base and has_prefix:
        state = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in state.items()}
    elif not is_base and not has_prefix:
        state = {k if k.startswith(head_keys) else "bert." + k: v for k, v in state.items()}

    ours: dict[str, Tensor] = {}
    qkv: dict[tuple[str, str, str], dict[str, Tensor]] = {}
    for key, value in state.items():
        m = _QKV_HF.match(key)
        if m:
            prefix, layer, part, kind = m.groups()
            qkv.setdefault((prefix, layer, kind), {})[part] = value
        else:
            ours[_from_hf(key)] = value
    for (prefix, layer, kind), parts in qkv.items():
        if len(parts) == 3:
            shapes = {p: tuple(t.shape) for p, t in parts.items()}
            if len(set(shapes.values())) != 1:
                raise CheckpointError(f"{source}: layer {layer} attention query/key/value {kind} shapes differ: {shapes}")
            ours[f"{prefix}layers.{layer}.attention.qkv.{kind}"] = torch.cat(
                [parts["query"], parts["key"], parts["value"]], dim=0)
        else:  # incomplete: report under transformers' names
            for p, t in parts.items():
                ours[f"{prefix}encoder.layer.{layer}.attention.self.{p}.{kind}"] = t

    expected = model.state_dict()
    unexpected = [k for k in ours if k not in expected]
    missing = [k for k in expected if k not in ours and not k.endswith(_ZERO_WHEN_ABSENT)]
    is_head = lambda k: k.startswith(_HEAD_PREFIXES) or k.startswith(tuple("bert." + p for p in _HEAD_PREFIXES))  # noqa: E731
    bad_unexpected = [k for k in unexpected if not is_head(k)]
    bad_missing = [k for k in missing if not is_head(k)]
    if bad_missing:
        raise CheckpointError(f"{source}: missing tensors {listing(hf_names(bad_missing))} "
                              f"(the checkpoint does not fit a {type(model).__name__} with this config.json)")
    if bad_unexpected:
        raise CheckpointError(f"{source}: unexpected tensors {listing(hf_names(bad_unexpected))} "
                              f"(not part of a {type(model).__name__} with this config.json)")
    for key in list(ours):
        if key in unexpected:
            del ours[key]
            continue
        want = tuple(expected[key].shape)
        if tuple(ours[key].shape) != want:
            name = hf_names([key])[0]
            raise CheckpointError(
                f"{source}: tensor {name} has shape {tuple(ours[key].shape)} in the checkpoint but the model "
                f"expects {want} from config.json's {shape_keys(name, _SHAPE_KEYS, 'hidden_size')} (config.json "
                "does not match the weights"
                + ("; pass num_labels matching the checkpoint" if "classifier" in key or "qa_outputs" in key else "")
                + ")")
    return ours, missing, unexpected


def hf_names(keys: Iterable[str]) -> list[str]:
    """Our tensor names as transformers' BERT names them (for messages)."""
    out = []
    for k in keys:
        m = _QKV_OURS.match(k)
        out.append(f"{m.group(1)}encoder.layer.{m.group(2)}.attention.self.query/key/value.{m.group(3)}"
                   if m else _to_hf(k))
    return out


def _architecture_from_keys(keys: Iterable[str]) -> str:
    keys = list(keys)
    has = lambda part: any(part in k for k in keys)  # noqa: E731
    if has("cls.seq_relationship") and has("cls.predictions"):
        return "BertForPreTraining"
    if has("cls.predictions"):
        return "BertForMaskedLM"
    if has("qa_outputs."):
        return "BertForQuestionAnswering"
    if has("classifier."):
        return "BertForSequenceClassification"
    return "BertModel"


def inspect_bert(d: Path, config: BertConfig, classes: dict[str, type[Any]]) -> dict[str, Any]:
    """What a BERT checkpoint holds, read from config.json and the safetensors header (no weights
    loaded); `classes` are the BERT architectures by name."""
    header = header_tensors(d)
    guessed = _architecture_from_keys(header)
    named = (config.architectures or [guessed])[0]
    check_weights_match(classes.get(named, classes[guessed]), config, d, header, BERT)
    shapes = tensor_shapes(header)
    counted = {k: v for k, v in shapes.items()
               if not k.endswith((*_DERIVED, "cls.predictions.decoder.bias"))}
    dtypes = parameters_by_dtype(counted)
    keys = list(shapes)
    heads = []
    if any("pooler." in k for k in keys):
        heads.append("pooler")
    if any("cls.predictions" in k for k in keys):
        heads.append("masked-LM (tied to word embeddings)")
    if any("cls.seq_relationship" in k for k in keys):
        heads.append("next-sentence prediction")
    for prefix, label in (("classifier.weight", "classifier"), ("qa_outputs.weight", "question answering (start/end)")):
        for k in keys:
            if k.endswith(prefix) and not k.startswith("cls."):
                out_dim = shapes[k][0][0]
                heads.append(f"{label} ({out_dim} outputs)" if label == "classifier" else label)
                break
    legacy = any(k.endswith(("LayerNorm.gamma", "LayerNorm.beta")) for k in keys)
    return {
        "path": str(d),
        "architectures": config.architectures or [guessed],
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_position_embeddings,
        "norm_placement": config.norm_placement,
        "position_embedding_type": config.position_embedding_type,
        "activation": config.hidden_act,
        "labels": config.id2label if any(h.startswith("classifier") for h in heads) else None,
        "parameters": sum(dtypes.values()),
        "dtypes": dtypes,
        "heads": heads,
        "tensor_names": "legacy (LayerNorm.gamma/beta)" if legacy else "transformers",
        **file_facts(d),
    }


class BertCheckpoint:
    """The `CheckpointAdapter` of BERT (`BertModel` and its heads)."""

    layer_pattern = _LAYER_NUMBER
    config_class = BertConfig

    def layer_example(self, config: Any) -> str:
        return "encoder.layer.N.*"

    def read_config(self, directory: Path, **config_overrides: Any) -> BertConfig:
        require_config(directory)
        return apply_overrides(BertConfig.from_pretrained(directory), config_overrides)

    def model_class(self, cls: type[Any], config: Any) -> type[Any]:
        return cls

    def to_hf(self, model: Any, dtype: torch.dtype | None) -> dict[str, Tensor]:
        return to_hf_state_dict(model, dtype)

    def from_hf(self, state: dict[str, Tensor], model: Any,
                source: str) -> tuple[dict[str, Tensor], list[str], list[str]]:
        return from_hf_state_dict(state, model, source)

    def hf_names(self, keys: list[str], config: Any) -> list[str]:
        return hf_names(keys)

    def architecture_name(self, model: Any) -> str:
        return type(model).__name__

    def guess_architecture(self, directory: Path, config: Any) -> str:
        return _architecture_from_keys(header_tensors(directory))

    def inspect(self, directory: Path, config: Any, classes: dict[str, type[Any]]) -> dict[str, Any]:
        return inspect_bert(directory, config, classes)


BERT = BertCheckpoint()
