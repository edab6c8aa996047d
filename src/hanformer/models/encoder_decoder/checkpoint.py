"""Encoder–decoder checkpoints in the Hugging Face `MarianMTModel` / `MarianModel` layout.

What differs between our modules and transformers' Marian:

* names: `encoder.layers.0.ffn.up` is `encoder.layers.0.fc1`, `attention_norm` is
  `self_attn_layer_norm`, ... (the table below, through the shared `NameTable`);
* fused projections: our self-attention projects Q, K and V with one matrix and our
  cross-attention K and V with one; Marian stores `q_proj`, `k_proj`, `v_proj` apart;
* tying: with shared embeddings the one matrix is stored once, as `model.shared.weight` (older
  checkpoints also repeat it as `embed_tokens` and `lm_head`; those copies are dropped, and an
  `lm_head` that differs from it is refused), and the sinusoidal position tables are not stored.

Pre-LN models add `encoder.layer_norm` / `decoder.layer_norm` (the names of transformers'
pre-LN MBart), and models with `normalize_embedding` add `encoder.layernorm_embedding` /
`decoder.layernorm_embedding` (BART's names); transformers' Marian has no such layers, so only
hanformer computes those models right. Reading files and the shared checks are `models/hub.py`'s.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from hanformer.errors import CheckpointError
from hanformer.models.common.name_table import NameTable
from hanformer.models.common.sizing import check_layer_count
from hanformer.models.encoder_decoder.config import TransformerConfig
from hanformer.models.encoder_decoder.model import (
    TransformerForSeq2SeqLM,
    TransformerModel,
    TransformerPreTrainedModel,
)
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


def _name_map() -> list[tuple[str, str]]:
    """(our name, Marian's name) below `model.`; "{i}" is the layer number."""
    pairs = []
    for side in ("encoder", "decoder"):
        layer = f"{side}.layers.{{i}}."
        pairs += [
            (f"{side}.token_embeddings.", f"{side}.embed_tokens."),  # unshared embeddings only
            (f"{side}.position_embeddings.", f"{side}.embed_positions."),  # learned positions only
            (layer + "attention.out.", layer + "self_attn.out_proj."),
            (layer + "attention_norm.", layer + "self_attn_layer_norm."),
            (layer + "ffn.up.", layer + "fc1."),
            (layer + "ffn.down.", layer + "fc2."),
            (layer + "ffn_norm.", layer + "final_layer_norm."),
            (f"{side}.final_norm.", f"{side}.layer_norm."),  # pre-LN only
            (f"{side}.embedding_norm.", f"{side}.layernorm_embedding."),  # normalize_embedding only
        ]
    layer = "decoder.layers.{i}."
    pairs += [
        (layer + "cross_attention.query.", layer + "encoder_attn.q_proj."),
        (layer + "cross_attention.out.", layer + "encoder_attn.out_proj."),
        (layer + "cross_attention_norm.", layer + "encoder_attn_layer_norm."),
    ]
    return pairs


_NAMES = NameTable(_name_map())
# Our fused projections and Marian's separate ones.
_FUSED_OURS = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(attention\.qkv|cross_attention\.key_value)\."
                         r"(weight|bias)$")
_SPLIT_HF = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(self_attn|encoder_attn)\.([qkv])_proj\.(weight|bias)$")
_PARTS = {"attention.qkv": ("self_attn", "qkv"), "cross_attention.key_value": ("encoder_attn", "kv")}
# Layer numbers in Marian tensor names: the encoder's (compared with encoder_layers by the shared
# check) and the decoder's (compared with decoder_layers here).
_ENCODER_LAYER = re.compile(r"(?:^|\.)encoder\.layers\.(\d+)\.")
_DECODER_LAYER = re.compile(r"(?:^|\.)decoder\.layers\.(\d+)\.")
_SHARED, _EMBED_COPIES = "shared.weight", ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
# Tensors of MarianMTModel outside `model.` (the output head).
_HEAD = ("lm_head.weight", "final_logits_bias")
# Which config.json keys decide a tensor's shape (named when the shape is wrong); default d_model.
_SHAPE_KEYS = [
    (re.compile(r"embed_tokens|shared|lm_head|final_logits_bias"), "vocab_size / decoder_vocab_size, d_model"),
    (re.compile(r"embed_positions"), "max_position_embeddings, d_model"),
    (re.compile(r"encoder\.layers\.\d+\.fc"), "encoder_ffn_dim, d_model"),
    (re.compile(r"decoder\.layers\.\d+\.fc"), "decoder_ffn_dim, d_model"),
]


def _prefix(model: TransformerPreTrainedModel) -> str:
    """Where the encoder and decoder sit: 'model.' in the translation model, '' in the bare one."""
    return "model." if isinstance(model, TransformerForSeq2SeqLM) else ""


def to_hf_state_dict(model: TransformerPreTrainedModel, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """Our weights under Marian's names, projections split, each tied matrix stored once."""
    prefix, shared = _prefix(model), model.config.share_encoder_decoder_embeddings
    out: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        value = value.detach()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        if key in _HEAD:
            out[key] = value.contiguous()
            continue
        bare = key[len(prefix):]
        if shared and bare == "decoder.token_embeddings.weight":
            continue  # the same matrix as the encoder's
        if shared and bare == "encoder.token_embeddings.weight":
            out[prefix + _SHARED] = value.contiguous()
            continue
        m = _FUSED_OURS.match(bare)
        if m:
            side, layer, ours, kind = m.groups()
            theirs, parts = _PARTS[ours]
            for part, chunk in zip(parts, value.chunk(len(parts), dim=0), strict=True):
                out[f"{prefix}{side}.layers.{layer}.{theirs}.{part}_proj.{kind}"] = chunk.contiguous()
            continue
        name = _NAMES.to_hf(bare)
        if name is None:
            raise CheckpointError(f"no Marian name for tensor {key}")  # a bug, not a user error
        out[prefix + name] = value.contiguous()
    return out


def _fuse(groups: dict[tuple[str, str, str, str], dict[str, Tensor]], ours: dict[str, Tensor], prefix: str) -> None:
    """Marian's separate q/k/v projections -> our fused ones (incomplete groups stay missing)."""
    for (side, layer, theirs, kind), parts in groups.items():
        base = f"{prefix}{side}.layers.{layer}."
        if theirs == "self_attn":
            if all(p in parts for p in "qkv"):
                ours[base + f"attention.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
            continue
        if "q" in parts:
            ours[base + f"cross_attention.query.{kind}"] = parts["q"]
        if "k" in parts and "v" in parts:
            ours[base + f"cross_attention.key_value.{kind}"] = torch.cat([parts["k"], parts["v"]], dim=0)


def _is_copy(a: Tensor, b: Tensor) -> bool:
    """Whether `a` repeats `b` (always assumed for shape-only meta tensors)."""
    return a.is_meta or b.is_meta or (a.shape == b.shape and torch.equal(a.to(b.dtype), b))


def from_hf_state_dict(state: dict[str, Tensor], model: TransformerPreTrainedModel,
                       source: str) -> dict[str, Tensor]:
    """Marian tensors -> our state dict; missing, unexpected or misshapen tensors are errors naming them."""
    require_floating(state, source)
    config: TransformerConfig = model.config
    prefix, lm = _prefix(model), isinstance(model, TransformerForSeq2SeqLM)
    ours: dict[str, Tensor] = {}
    groups: dict[tuple[str, str, str, str], dict[str, Tensor]] = {}
    embeddings: dict[str, Tensor] = {}
    unexpected: list[str] = []
    head = state.get("lm_head.weight")
    for key, value in state.items():
        if key in _HEAD:
            if lm and (key == "final_logits_bias" or not config.tie_word_embeddings):
                ours[key] = value
            continue  # a bare model has no head; a tied head is the embeddings (checked below)
        bare = key[len("model."):] if key.startswith("model.") else key
        if bare.endswith("embed_positions.weight") and config.position_embedding_type == "sinusoidal":
            continue  # the sinusoid table, computed rather than loaded
        if config.share_encoder_decoder_embeddings and (bare == _SHARED or bare in _EMBED_COPIES):
            embeddings[bare] = value
            continue
        m = _SPLIT_HF.match(bare)
        if m:
            side, layer, theirs, part, kind = m.groups()
            groups.setdefault((side, layer, theirs, kind), {})[part] = value
            continue
        name = _NAMES.from_hf(bare)
        if name is None:
            unexpected.append(key)
        else:
            ours[prefix + name] = value
    _fuse(groups, ours, prefix)
    if config.share_encoder_decoder_embeddings and embeddings:
        matrix = embeddings.get(_SHARED, next(iter(embeddings.values())))
        copies = [k for k, t in embeddings.items() if not _is_copy(t, matrix)]
        if copies:
            raise CheckpointError(f"{source}: {', '.join(copies)} differ from the shared embeddings; set "
                                  "share_encoder_decoder_embeddings to false in config.json if they are separate")
        ours[prefix + "encoder.token_embeddings.weight"] = matrix
        ours[prefix + "decoder.token_embeddings.weight"] = matrix
    if unexpected:
        raise CheckpointError(f"{source}: tensors that are not part of this {type(model).__name__} "
                              f"(config.json's options do not match the weights?): {listing(unexpected)}")
    expected = model.state_dict()
    if lm and "final_logits_bias" not in ours:  # optional in Marian checkpoints: zero
        ours["final_logits_bias"] = expected["final_logits_bias"].new_zeros(expected["final_logits_bias"].shape)
    missing = [k for k in expected if k not in ours]
    if missing:
        raise CheckpointError(f"{source}: missing tensors {listing(hf_names(missing, config))}; the checkpoint "
                              "is incomplete or config.json's options do not match it")
    for key, tensor in expected.items():
        if tuple(ours[key].shape) != tuple(tensor.shape):
            name = hf_names([key], config)[0]
            raise CheckpointError(f"{source}: tensor {name} has shape {tuple(ours[key].shape)} in the checkpoint but "
                                  f"the model expects {tuple(tensor.shape)} from config.json's "
                                  f"{shape_keys(name, _SHAPE_KEYS, 'd_model')} (config.json does not match the weights)")
    if lm and config.tie_word_embeddings and head is not None \
            and not _is_copy(head, ours[prefix + "decoder.token_embeddings.weight"]):
        raise CheckpointError(f"{source}: lm_head.weight differs from the target embeddings; set "
                              "tie_word_embeddings to false in config.json if the output layer is separate")
    return ours


def hf_names(keys: list[str], config: TransformerConfig) -> list[str]:
    """Our tensor names as Marian names them (for messages)."""
    out = []
    for key in keys:
        prefix = "model." if key.startswith("model.") else ""
        bare = key[len(prefix):]
        m = _FUSED_OURS.match(bare)
        if m:
            side, layer, ours, kind = m.groups()
            theirs, parts = _PARTS[ours]
            out.append(f"{prefix}{side}.layers.{layer}.{theirs}.{'/'.join(parts)}_proj.{kind}")
        elif config.share_encoder_decoder_embeddings and bare.endswith("token_embeddings.weight"):
            out.append(prefix + _SHARED)
        else:
            out.append(prefix + (_NAMES.to_hf(bare) or bare))
    return out


def inspect_marian(d: Path, config: TransformerConfig, classes: dict[str, type[Any]]) -> dict[str, Any]:
    """What a Marian layout checkpoint holds (the keys of `inspect_checkpoint`), read without
    loading weights; `classes` are the encoder–decoder architectures by name."""
    header = header_tensors(d)
    lm = any(k.startswith("model.") or k in _HEAD for k in header)
    named = (config.architectures or [""])[0]
    check_weights_match(classes.get(named, TransformerForSeq2SeqLM if lm else TransformerModel), config, d,
                        header, MARIAN)
    # Counted as parameters: what is learned (not the sinusoid tables, not the output bias buffer).
    shapes = {k: v for k, v in tensor_shapes(header).items() if k != "final_logits_bias"
              and (not k.endswith("embed_positions.weight") or config.position_embedding_type == "learned")}
    dtypes = parameters_by_dtype(shapes)
    tied = "shared embeddings" if config.share_encoder_decoder_embeddings else "separate embeddings"
    return {
        "path": str(d),
        "architectures": config.architectures or ["MarianMTModel" if lm else "MarianModel"],
        "layers": f"{config.encoder_layers} encoder + {config.decoder_layers} decoder",
        "hidden_size": config.d_model,
        "attention_heads": f"{config.encoder_attention_heads} / {config.decoder_attention_heads}",
        "intermediate_size": f"{config.encoder_ffn_dim} / {config.decoder_ffn_dim}",
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_position_embeddings,
        "norm_placement": config.norm_placement,
        "position_embedding_type": config.position_embedding_type,
        "activation": config.activation_function, "labels": None,
        "parameters": sum(dtypes.values()), "dtypes": dtypes,
        "heads": [f"translation LM ({tied}, output {'tied' if config.tie_word_embeddings else 'untied'})"]
        if lm else [],
        "tensor_names": "transformers (Marian)",
        **file_facts(d),
    }


class MarianCheckpoint:
    """The `CheckpointAdapter` of the encoder–decoder family (`TransformerModel`,
    `TransformerForSeq2SeqLM`): Marian's names, split projections, tied matrices stored once."""

    layer_pattern = _ENCODER_LAYER
    config_class = TransformerConfig

    def layer_example(self, config: Any) -> str:
        return "model.encoder.layers.N.*"

    def read_config(self, directory: Path, **config_overrides: Any) -> TransformerConfig:
        path = require_config(directory)
        config = apply_overrides(TransformerConfig.from_pretrained(directory), config_overrides, relabel=False)
        # The shared check counts the encoder's layers; the decoder's are counted here, before
        # anything is built from a config.json that asks for too many.
        check_layer_count(SimpleNamespace(layer_field="decoder_layers", decoder_layers=config.decoder_layers),
                          header_tensors(directory), _DECODER_LAYER, str(path), "model.decoder.layers.N.*")
        return config

    def model_class(self, cls: type[Any], config: Any) -> type[Any]:
        return cls

    def to_hf(self, model: Any, dtype: torch.dtype | None) -> dict[str, Tensor]:
        return to_hf_state_dict(model, dtype)

    def from_hf(self, state: dict[str, Tensor], model: Any,
                source: str) -> tuple[dict[str, Tensor], list[str], list[str]]:
        return from_hf_state_dict(state, model, source), [], []

    def hf_names(self, keys: list[str], config: Any) -> list[str]:
        return hf_names(keys, config)

    def architecture_name(self, model: Any) -> str:
        return "MarianMTModel" if isinstance(model, TransformerForSeq2SeqLM) else "MarianModel"

    def guess_architecture(self, directory: Path, config: Any) -> str:
        return "MarianMTModel"  # what transformers' AutoModelForSeq2SeqLM would build

    def inspect(self, directory: Path, config: Any, classes: dict[str, type[Any]]) -> dict[str, Any]:
        return inspect_marian(directory, config, classes)


MARIAN = MarianCheckpoint()
