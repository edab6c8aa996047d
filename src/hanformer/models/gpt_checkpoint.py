"""GPT checkpoints in the Hugging Face GPT-2 layout (`GPT2LMHeadModel` / `GPT2Model`).

Two things differ between our modules and transformers' GPT-2:

* names: `layers.0.attention.qkv` is `h.0.attn.c_attn`, `ffn.up` is `mlp.c_fc`, ... (table below);
* orientation: GPT-2 projects with `Conv1D`, whose weight is stored (in, out), the transpose of
  `nn.Linear`'s (out, in). Every projection weight is transposed on the way in and out.

The output head is tied to the token embeddings, so `lm_head.weight` is not stored (as
transformers does); a checkpoint whose head differs from its embeddings cannot be represented
and is refused. Reading goes through `models/checkpoint.py` (safetensors, or weights-only
PyTorch files).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from hanformer.errors import CheckpointError, ConfigError
from hanformer.models.checkpoint import (
    TOKENIZER_FILES,
    WEIGHTS_NAME,
    _require_dir,
    _tensor_shapes,
    check_weights_match,
    header_tensors,
    read_state_dict,
    require_floating,
    shape_keys,
    weight_files,
)
from hanformer.models.gpt import (
    GPT_ARCHITECTURES,
    GPTConfig,
    GPTForCausalLM,
    GPTModel,
    GPTPreTrainedModel,
)
from hanformer.models.sizing import check_fits_in_memory
from hanformer.utils.files import atomic_save

log = logging.getLogger("hanformer.models")
G = TypeVar("G", bound=GPTPreTrainedModel)

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


def _table(src: int, dst: int) -> list[tuple[re.Pattern[str], str]]:
    out = []
    for pair in _NAME_MAP:
        pattern = "^" + re.escape(pair[src]).replace(r"\{i\}", r"(\d+)")
        out.append((re.compile(pattern), pair[dst]))
    return out


_TO_HF, _FROM_HF = _table(0, 1), _table(1, 0)


def _rename(key: str, table: list[tuple[re.Pattern[str], str]]) -> str | None:
    for pattern, target in table:
        m = pattern.match(key)
        if m:
            layer = m.group(1) if m.groups() else ""
            return target.replace("{i}", layer) + key[m.end():]
    return None


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
        name = _rename(key[len(prefix):], _TO_HF)
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
        name = _rename(bare, _FROM_HF)
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


def save_pretrained(model: GPTPreTrainedModel, directory: str | Path, dtype: torch.dtype | None = None) -> None:
    """config.json + model.safetensors, both written atomically."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.cpu() for k, v in to_hf_state_dict(model, dtype).items()}
    atomic_save(d / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    architecture = "GPT2LMHeadModel" if isinstance(model, GPTForCausalLM) else "GPT2Model"
    dataclasses.replace(model.config, architectures=[architecture]).save_pretrained(d)


def load_pretrained(cls: type[G], directory: str | Path, *, dtype: torch.dtype | None = None,
             **config_overrides: Any) -> G:
    d = _require_dir(directory)
    if not (d / "config.json").is_file():
        raise CheckpointError(f"{d}: no config.json (not a checkpoint directory in the Hugging Face layout)")
    config = GPTConfig.from_pretrained(d)
    if config_overrides:
        try:
            config = dataclasses.replace(config, **config_overrides)
        except TypeError as e:
            raise ConfigError(f"from_pretrained: {e}") from None
    # Everything that can fail is checked on the headers before the model is allocated.
    check_weights_match(cls, config, d, header_tensors(d), from_hf_state_dict, _LAYER_NUMBER, "h.N.*")
    check_fits_in_memory(config, str(d / "config.json"))
    model = cls(config)
    model.load_state_dict(from_hf_state_dict(read_state_dict(d), model, source=str(d)))
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    return model


def inspect_gpt(directory: str | Path) -> dict[str, Any]:
    """`inspect_checkpoint` for GPT-2 layout checkpoints: the same keys, read without loading weights."""
    d = _require_dir(directory)
    config = GPTConfig.from_pretrained(d)
    header = header_tensors(d)
    lm = any(k.startswith("transformer.") or k == "lm_head.weight" for k in header)
    named = (config.architectures or [""])[0]
    check_weights_match(GPT_ARCHITECTURES.get(named, GPTForCausalLM if lm else GPTModel), config, d, header,
                        from_hf_state_dict, _LAYER_NUMBER, "h.N.*")
    shapes = {k: v for k, v in _tensor_shapes(header).items() if not _BUFFERS.search(k) and k != "lm_head.weight"}
    dtypes: dict[str, int] = {}
    for shape, dtype in shapes.values():
        dtypes[dtype] = dtypes.get(dtype, 0) + int(torch.Size(shape).numel())
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
        "weight_files": [p.name for p in weight_files(d)],
        "weight_bytes": sum(p.stat().st_size for p in weight_files(d) if p.is_file()),
        "tokenizer_files": [n for n in TOKENIZER_FILES if (d / n).is_file()],
    }
