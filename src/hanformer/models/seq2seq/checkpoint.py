"""RNN encoder–decoder folders (`RNNForSeq2SeqLM`) in the checkpoint registry.

The layout is hanformer's own, as `RNNForSeq2SeqLM.save_pretrained` writes it: config.json
(`RNNSeq2SeqConfig`, model_type "rnn_seq2seq") + model.safetensors under our tensor names, a
shared or tied matrix stored once. transformers has no such model, so no names are translated:
the adapter restores the shared matrices' second names, checks names and shapes on the header
before anything is built (through `models/hub.py`, as every family does), and describes the
folder for `inspect_checkpoint`.

Two small pieces let the registry's common paths open these folders as they open the others:

* `RNNSeq2SeqCheckpointConfig`, the config with what those paths read of every config
  (`architectures`, the layer and size fields named in their errors);
* `RNNSeq2SeqLoader`, the class whose `from_pretrained(directory, dtype=..., **overrides)`
  `load_model` calls; it builds a plain `RNNForSeq2SeqLM`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hanformer.errors import CheckpointError
from hanformer.models.hub import (
    apply_overrides,
    check_weights_match,
    file_facts,
    header_tensors,
    listing,
    load_pretrained,
    parameters_by_dtype,
    require_config,
    require_floating,
    tensor_shapes,
)
from hanformer.models.seq2seq.config import ARCHITECTURE, RNNSeq2SeqConfig
from hanformer.models.seq2seq.model import RNNForSeq2SeqLM

# Layer numbers of the encoder's recurrence (torch names them weight_ih_l0, weight_ih_l0_reverse, ...);
# the decoder has as many, which the name check against the skeleton verifies.
_ENCODER_LAYER = re.compile(r"^encoder\.rnn\.weight_ih_l(\d+)$")


class RNNSeq2SeqCheckpointConfig(RNNSeq2SeqConfig):
    """`RNNSeq2SeqConfig` as the checkpoint code reads configs: config.json always names the one
    architecture, and size errors name these fields."""

    @property
    def architectures(self) -> list[str]:
        return [ARCHITECTURE]

    @property
    def layer_field(self) -> str:
        return "num_layers"

    @property
    def shape_fields(self) -> tuple[str, ...]:
        return ("vocab_size", "embedding_size", "hidden_size", "num_layers", "attention_size")


def _aliases(model: RNNForSeq2SeqLM) -> dict[str, str]:
    """Second name -> first name of each shared or tied matrix, in state-dict order (the first is
    the one stored). Told apart by the parameter objects, which works on a meta skeleton too."""
    first: dict[int, str] = {}
    aliases: dict[str, str] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in first:
            aliases[name] = first[id(tensor)]
        else:
            first[id(tensor)] = name
    return aliases


def from_stored(state: dict[str, Tensor], model: RNNForSeq2SeqLM, source: str) -> dict[str, Tensor]:
    """The stored tensors -> `model`'s whole state dict; missing, unexpected or misshapen
    tensors are errors naming them."""
    aliases = _aliases(model)
    expected = model.state_dict()
    unexpected = [k for k in state if k not in expected or k in aliases]
    if unexpected:
        raise CheckpointError(f"{source}: tensors that are not part of this RNN encoder-decoder: "
                              f"{listing(unexpected)}; config.json does not describe these weights (cell, "
                              "attention, layers or shared embeddings differ)")
    missing = [k for k in expected if k not in state and k not in aliases]
    if missing:
        raise CheckpointError(f"{source}: missing tensors {listing(missing)}; the checkpoint is incomplete or "
                              "config.json does not describe these weights")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{source}: tensor {key} has shape {tuple(value.shape)} in the checkpoint but "
                                  f"config.json makes it {tuple(expected[key].shape)} (config.json does not match "
                                  "the weights)")
    require_floating(state, source)
    return {**state, **{alias: state[stored] for alias, stored in aliases.items()}}


def inspect_rnn_seq2seq(d: Path, config: RNNSeq2SeqConfig) -> dict[str, Any]:
    """What an RNN encoder–decoder folder holds (the keys of `inspect_checkpoint`), read without
    loading weights."""
    header = header_tensors(d)
    check_weights_match(RNNForSeq2SeqLM, config, d, header, RNN_SEQ2SEQ)
    dtypes = parameters_by_dtype(tensor_shapes(header))
    directions = "bidirectional" if config.bidirectional else "unidirectional"
    return {
        "path": str(d),
        "architectures": [ARCHITECTURE],
        "layers": f"{config.num_layers} encoder ({directions}) + {config.num_layers} decoder",
        "hidden_size": config.hidden_size,
        "attention_heads": f"{config.attention} attention" if config.attention != "none" else "no attention",
        "intermediate_size": f"embeddings {config.embedding_size}, attention {config.attention_size}",
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_position_embeddings,
        "norm_placement": "no",  # shown as "no-LN"
        "position_embedding_type": "recurrent, no position table",
        "activation": config.cell,
        "labels": None,
        "parameters": sum(dtypes.values()), "dtypes": dtypes,
        "heads": [f"translation LM ({config.cell.upper()}, output "
                  f"{'tied' if config.tie_word_embeddings else 'untied'})"],
        "tensor_names": "hanformer (RNNForSeq2SeqLM)",
        **file_facts(d),
    }


class RNNSeq2SeqCheckpoint:
    """The `CheckpointAdapter` of the recurrent encoder–decoders: our own names, shared
    matrices stored once. Every tensor is required, so loading reports no missing or unused heads."""

    layer_pattern = _ENCODER_LAYER
    config_class = RNNSeq2SeqCheckpointConfig

    def layer_example(self, config: Any) -> str:
        return "encoder.rnn.weight_ih_lN"

    def read_config(self, directory: Path, **config_overrides: Any) -> RNNSeq2SeqCheckpointConfig:
        require_config(directory)
        # An RNN has no label names that a new size would invalidate.
        config: RNNSeq2SeqCheckpointConfig = apply_overrides(
            RNNSeq2SeqCheckpointConfig.from_pretrained(directory), config_overrides, relabel=False)
        return config

    def model_class(self, cls: type[Any], config: Any) -> type[Any]:
        return RNNForSeq2SeqLM

    def to_hf(self, model: Any, dtype: torch.dtype | None) -> dict[str, Tensor]:
        stored: dict[str, Tensor] = model._stored()
        return {k: v.to(dtype) if dtype is not None and v.is_floating_point() else v for k, v in stored.items()}

    def from_hf(self, state: dict[str, Tensor], model: Any,
                source: str) -> tuple[dict[str, Tensor], list[str], list[str]]:
        return from_stored(state, model, source), [], []

    def hf_names(self, keys: list[str], config: Any) -> list[str]:
        return list(keys)

    def architecture_name(self, model: Any) -> str:
        return ARCHITECTURE

    def guess_architecture(self, directory: Path, config: Any) -> str:
        return ARCHITECTURE

    def inspect(self, directory: Path, config: Any, classes: dict[str, type[Any]]) -> dict[str, Any]:
        return inspect_rnn_seq2seq(directory, config)


RNN_SEQ2SEQ = RNNSeq2SeqCheckpoint()


class RNNSeq2SeqLoader:
    """How `load_model` opens an RNN folder: it calls `from_pretrained(directory, dtype=...,
    **config_overrides)` on the class the registry names for an architecture, as every
    `PreTrainedModel` answers it. `RNNForSeq2SeqLM.from_pretrained` keeps its own, smaller
    signature; this one runs the shared checked loading of `models/hub.py`."""

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, dtype: torch.dtype | None = None,
                        **config_overrides: Any) -> RNNForSeq2SeqLM:
        return load_pretrained(RNNForSeq2SeqLM, directory, RNN_SEQ2SEQ, dtype=dtype, **config_overrides)
