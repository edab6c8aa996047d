"""GPT checkpoints in the Hugging Face GPT-2 layout (`GPT2LMHeadModel` / `GPT2Model`).

Two things differ between our modules and transformers' GPT-2:

* names: `layers.0.attention.qkv` is `h.0.attn.c_attn`, `ffn.up` is `mlp.c_fc`, ... (table below);
* orientation: GPT-2 projects with `Conv1D`, whose weight is stored (in, out), the transpose of
  `nn.Linear`'s (out, in). Every projection weight is transposed on the way in and out.

The output head is tied to the token embeddings, so `lm_head.weight` is not stored (as
transformers does); a checkpoint whose head differs from its embeddings cannot be represented
and is refused. Reading files and the shared checks are `models/hub.py`'s.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hanformer.errors import CheckpointError
from hanformer.models.common.name_table import NameTable
from hanformer.models.gpt.config import GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM, GPTModel, GPTPreTrainedModel
from hanformer.models.hub import (
    apply_overrides,
    check_weights_match,
    file_facts,
    header_tensors,
    parameters_by_dtype,
    require_config,
    require_floating,
    shape_keys,
    tensor_shapes,
)

# (our name, GPT-2's name) inside the decoder stack; "{i}" is the layer number.
_NAME_MAP = [
    ("token_embeddings.", "wte."),
    ("position_embeddings.", "wpe."),
    ("layers.{i}.attention_norm.", "h.{i}.ln_1."),
    ("layers.{i}.attention.qkv.", "h.{i}.attn.c_attn."),
    ("layers.{i}.attention.out.", "h.{i}.attn.c_proj."),
    ("layers.{i}.ffn_norm.", "h.{i}.ln_2."),
    ("layers.{i}.ffn.up.", "h.{i}.mlp.c_fc."),
    ("layers.{i}.ffn.down.", "h.{i}.mlp.c_proj."),
    ("final_norm.", "ln_f."),
]
_CONV1D = re.compile(r"\.(c_attn|c_proj|c_fc)\.weight$")
# Old transformers versions stored the causal mask as buffers; they are not weights.
_BUFFERS = re.compile(r"\.attn\.(bias|masked_bias)$")
# Layer numbers in GPT-2 tensor names (compared with n_layer).
_LAYER_NUMBER = re.compile(r"(?:^|\.)h\.(\d+)\.")
# Which config.json keys decide a tensor's shape (named when the shape is wrong); default n_embd.
_SHAPE_KEYS = [
    (re.compile(r"token_embeddings"), "vocab_size, n_embd"),
    (re.compile(r"position_embeddings"), "n_positions, n_embd"),
    (re.compile(r"ffn\."), "n_inner, n_embd"),
]


_NAMES = NameTable(_NAME_MAP)


def _prefix(model: GPTPreTrainedModel) -> str:
    """Where the decoder stack sits: 'transformer.' in the LM, '' in the bare model."""
    return "transformer." if isinstance(model, GPTForCausalLM) else ""


def to_hf_state_dict(model: GPTPreTrainedModel, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """Our weights under GPT-2's names and Conv1D orientation (the tied head not repeated)."""
    prefix = _prefix(model)
    out: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        value = value.detach()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        name = _NAMES.to_hf(key[len(prefix):])
        if name is None:
            raise CheckpointError(f"no GPT-2 name for tensor {key}")  # a bug, not a user error
        if _CONV1D.search(name):
            value = value.t()
        out[prefix + name] = value.contiguous()
    return out


def from_hf_state_dict(state: dict[str, Tensor], model: GPTPreTrainedModel, source: str) -> dict[str, Tensor]:
    """GPT-2 tensors -> our state dict; missing, unexpected or misshapen tensors are errors naming them."""
    prefix = _prefix(model)
    ours: dict[str, Tensor] = {}
    unexpected: list[str] = []
    # Old transformers versions stored the causal mask as (integer) buffers; they are not weights.
    require_floating({k: v for k, v in state.items() if not _BUFFERS.search(k)}, source)
    head = state.get("lm_head.weight")
    for key, value in state.items():
        if key == "lm_head.weight" or _BUFFERS.search(key):
            continue
        bare = key[len("transformer."):] if key.startswith("transformer.") else key
        name = _NAMES.from_hf(bare)
        if name is None:
            unexpected.append(key)
            continue
        if _CONV1D.search(bare):
            value = value.t()
        ours[prefix + name] = value.contiguous()
    if unexpected:
        raise CheckpointError(f"{source}: tensors that are not part of a GPT-2 model: {', '.join(unexpected[:8])}"
                              + (f" and {len(unexpected) - 8} more" if len(unexpected) > 8 else ""))
    expected = model.state_dict()
    missing = [k for k in expected if k not in ours]
    if missing:
        raise CheckpointError(f"{source}: missing tensors {', '.join(missing[:8])}; the checkpoint is incomplete "
                              "or not a GPT-2 model")
    for key, tensor in expected.items():
        if tuple(ours[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{source}: tensor {key} has shape {tuple(ours[key].shape)} in the checkpoint but "
                                  f"the model expects {tuple(tensor.shape)} from config.json's "
                                  f"{shape_keys(key, _SHAPE_KEYS, 'n_embd')} (config.json does not match the weights)")
    embeddings = ours.get(prefix + "token_embeddings.weight")
    if head is not None and embeddings is not None and not head.is_meta \
            and not torch.equal(head.to(embeddings.dtype), embeddings):
        raise CheckpointError(f"{source}: lm_head.weight differs from the token embeddings; only GPT-2 models "
                              "with tied input/output embeddings are supported")
    return ours


def inspect_gpt(d: Path, config: GPTConfig, classes: dict[str, type[Any]]) -> dict[str, Any]:
    """What a GPT-2 layout checkpoint holds (the keys of `inspect_checkpoint`), read without
    loading weights; `classes` are the GPT architectures by name."""
    header = header_tensors(d)
    lm = any(k.startswith("transformer.") or k == "lm_head.weight" for k in header)
    named = (config.architectures or [""])[0]
    check_weights_match(classes.get(named, GPTForCausalLM if lm else GPTModel), config, d, header, GPT)
    shapes = {k: v for k, v in tensor_shapes(header).items() if not _BUFFERS.search(k) and k != "lm_head.weight"}
    dtypes = parameters_by_dtype(shapes)
    return {
        "path": str(d),
        "architectures": config.architectures or ["GPT2LMHeadModel" if lm else "GPT2Model"],
        "layers": config.n_layer, "hidden_size": config.n_embd, "attention_heads": config.n_head,
        "intermediate_size": config.intermediate_size, "vocab_size": config.vocab_size,
        "max_position_embeddings": config.n_positions, "norm_placement": "pre",
        "position_embedding_type": "absolute", "activation": config.activation_function, "labels": None,
        "parameters": sum(dtypes.values()), "dtypes": dtypes,
        "heads": ["causal LM (tied to word embeddings)"] if lm else [],
        "tensor_names": "transformers (GPT-2)",
        **file_facts(d),
    }


class GPTCheckpoint:
    """The `CheckpointAdapter` of GPT (`GPTModel`, `GPTForCausalLM`): GPT-2's names and Conv1D
    orientation. Every tensor is required, so loading reports no missing or unused heads."""

    layer_pattern = _LAYER_NUMBER
    config_class = GPTConfig

    def layer_example(self, config: Any) -> str:
        return "h.N.*"

    def read_config(self, directory: Path, **config_overrides: Any) -> GPTConfig:
        require_config(directory)
        # GPT has no label names that a new head size would invalidate.
        return apply_overrides(GPTConfig.from_pretrained(directory), config_overrides, relabel=False)

    def model_class(self, cls: type[Any], config: Any) -> type[Any]:
        return cls

    def to_hf(self, model: Any, dtype: torch.dtype | None) -> dict[str, Tensor]:
        return to_hf_state_dict(model, dtype)

    def from_hf(self, state: dict[str, Tensor], model: Any,
                source: str) -> tuple[dict[str, Tensor], list[str], list[str]]:
        return from_hf_state_dict(state, model, source), [], []

    def hf_names(self, keys: list[str], config: Any) -> list[str]:
        return list(keys)

    def architecture_name(self, model: Any) -> str:
        return "GPT2LMHeadModel" if isinstance(model, GPTForCausalLM) else "GPT2Model"

    def guess_architecture(self, directory: Path, config: Any) -> str:
        return "GPT2LMHeadModel"  # what transformers' AutoModelForCausalLM would build

    def inspect(self, directory: Path, config: Any, classes: dict[str, type[Any]]) -> dict[str, Any]:
        return inspect_gpt(directory, config, classes)


GPT = GPTCheckpoint()
