"""RoBERTa, XLM-RoBERTa and ELECTRA checkpoints in the Hugging Face layout.

The encoder is BERT's under the family's prefix (`roberta.`, `electra.`), so its tensors go
through BERT's translation in models/bert/checkpoint.py (names, the fused Q/K/V, legacy names);
ELECTRA adds `embeddings_project` (our `embeddings.project`). The heads carry each family's own
names (table below). Loading follows BERT's rules: encoder tensors are strict, a head the
checkpoint lacks starts fresh (with a warning), a head of another task is dropped, so
`monologg/koelectra-*-discriminator` (an `ElectraForPreTraining`) fine-tunes under a classifier.
Reading files and the shared checks are `models/hub.py`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from torch import Tensor

from hanformer.errors import CheckpointError
from hanformer.models.bert.checkpoint import BERT, from_hf_state_dict, hf_names, to_hf_state_dict
from hanformer.models.bert.family import (
    CLASS_PREFIX,
    EncoderFamilyConfig,
    architecture_name,
    family_architectures,
    family_of,
)
from hanformer.models.bert.model import BertModel, BertPreTrainedModel
from hanformer.models.common.name_table import NameTable
from hanformer.models.hub import (
    apply_overrides,
    check_weights_match,
    file_facts,
    header_tensors,
    parameters_by_dtype,
    require_config,
    require_floating,
    tensor_shapes,
)

M = TypeVar("M", bound=BertPreTrainedModel)

PREFIX = {"roberta": "roberta.", "xlm-roberta": "roberta.", "electra": "electra."}
# Tensor names (after the prefix) that belong to the encoder; everything else is a head.
_ENCODER_PARTS = ("embeddings.", "embeddings_project.", "encoder.", "pooler.")
_PROJECTION = ("embeddings.project.", "embeddings_project.")  # (ours, transformers')
# (our head tensor, the family's). Names not listed are equal: classifier.*, qa_outputs.*.
_HEAD_NAMES = [
    ("mlm.transform.", "lm_head.dense."),
    ("mlm.norm.", "lm_head.layer_norm."),
    ("mlm.bias", "lm_head.bias"),
    ("rtd.dense.", "discriminator_predictions.dense."),
    ("rtd.prediction.", "discriminator_predictions.dense_prediction."),
]
_TIED = "lm_head.decoder.weight"  # the word embeddings again; never stored by us


_HEADS = NameTable(_HEAD_NAMES)
_PROJECTIONS = NameTable([_PROJECTION])


def _head_to_hf(key: str) -> str:
    return _HEADS.to_hf(key) or key


def _projection_to_hf(key: str) -> str:
    return _PROJECTIONS.to_hf(key) or key


def _encoder_of(model: BertPreTrainedModel) -> BertModel:
    return model if isinstance(model, BertModel) else model.bert  # type: ignore[return-value]


# --- name translation -----------------------------------------------------------------------

def to_family_state_dict(model: BertPreTrainedModel, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """Our tensors under the family's transformers names (Q/K/V split; tied decoder not repeated)."""
    encoder = _encoder_of(model)
    prefix = "" if encoder is model else PREFIX[family_of(model)]
    out = {prefix + _projection_to_hf(k): v for k, v in to_hf_state_dict(encoder, dtype).items()}
    if encoder is not model:
        for key, value in model.state_dict().items():
            if not key.startswith("bert."):
                value = value.detach().to(dtype) if dtype is not None and value.is_floating_point() else value.detach()
                out[_head_to_hf(key)] = value.contiguous()
    return out


def from_family_state_dict(state: dict[str, Tensor], model: BertPreTrainedModel,
                           source: str = "checkpoint") -> tuple[dict[str, Tensor], list[str], list[str]]:
    """The family's tensors -> our names for `model`: (state dict, head tensors the model wants but
    the checkpoint lacks, head tensors this model has no use for), as `from_hf_state_dict`."""
    family = family_of(model)
    encoder = _encoder_of(model)
    prefix = PREFIX[family]
    state = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
    if "lm_head.decoder.bias" in state:  # older files store the MLM bias twice, or only here
        bias = state.pop("lm_head.decoder.bias")
        state.setdefault("lm_head.bias", bias)
    encoder_state: dict[str, Tensor] = {}
    heads: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith(_ENCODER_PARTS):
            encoder_state[(_PROJECTIONS.from_hf(key) or key)] = value
        elif key != _TIED:
            heads[(_HEADS.from_hf(key) or key)] = value
    ours, missing, unused = from_hf_state_dict(encoder_state, encoder, source)
    if encoder is model:
        return ours, missing, unused + list(heads)
    require_floating(heads, source)
    wanted = {k: v for k, v in model.state_dict().items() if not k.startswith("bert.")}
    for key in wanted.keys() & heads.keys():
        if tuple(heads[key].shape) != tuple(wanted[key].shape):
            raise CheckpointError(
                f"{source}: tensor {_head_to_hf(key)} has shape {tuple(heads[key].shape)} in the "
                f"checkpoint but the model expects {tuple(wanted[key].shape)} (config.json does not match the "
                "weights; pass num_labels matching the checkpoint)")
    result = {"bert." + k: v for k, v in ours.items()} | {k: heads[k] for k in wanted if k in heads}
    return (result, ["bert." + k for k in missing] + [k for k in wanted if k not in heads],
            ["bert." + k for k in unused] + [k for k in heads if k not in wanted])


def family_names(keys: Iterable[str], family: str) -> list[str]:
    """Our tensor names as the family's checkpoints name them (for messages)."""
    out = []
    for key in keys:
        if key.startswith("bert."):
            out.append(PREFIX[family] + _projection_to_hf(hf_names([key[len("bert."):]])[0]))
        else:
            out.append(_head_to_hf(key))
    return out


# --- classes --------------------------------------------------------------------------------

def family_class(cls: type[M], family: str) -> type[M]:
    """The family's class for `cls`: itself when it is one, else the one in its place
    (`BertForTokenClassification` -> the class of `XLMRobertaForTokenClassification`)."""
    suffix = getattr(cls, "hf_suffix", None) or cls.__name__.removeprefix("Bert")
    classes = family_architectures(family)
    target = classes.get(CLASS_PREFIX[family] + suffix)
    if target is None or not issubclass(target, cls):
        raise CheckpointError(f"a {family} checkpoint does not load as {cls.__name__}; {family} classes: "
                              f"{', '.join(classes)}")
    return target


def _architecture_from_keys(keys: Iterable[str], family: str) -> str:
    keys = list(keys)
    has = lambda part: any(part in k for k in keys)  # noqa: E731
    if has("lm_head."):
        suffix = "ForMaskedLM"
    elif has("discriminator_predictions."):
        suffix = "ForPreTraining"
    elif has("qa_outputs."):
        suffix = "ForQuestionAnswering"
    elif has("classifier.out_proj."):
        suffix = "ForSequenceClassification"
    elif has("classifier."):
        suffix = "ForTokenClassification"
    else:
        suffix = "Model"
    name = CLASS_PREFIX[family] + suffix
    return name if name in family_architectures(family) else CLASS_PREFIX[family] + "Model"


# --- inspecting ------------------------------------------------------------------------------

def inspect_family(d: Path, config: EncoderFamilyConfig, classes: dict[str, type[Any]]) -> dict[str, Any]:
    """What a RoBERTa / XLM-R / ELECTRA checkpoint holds: the keys of `inspect_checkpoint` (plus
    `model_type` and `embedding_size`), read without loading the weights; `classes` are the
    families' architectures by name."""
    header = header_tensors(d)
    guessed = _architecture_from_keys(header, config.family)
    named = (config.architectures or [guessed])[0]
    check_weights_match(classes.get(named, classes[guessed]), config, d, header, FAMILY)
    shapes = {k: v for k, v in tensor_shapes(header).items()
              if not k.endswith(("position_ids", "token_type_ids", _TIED, "lm_head.decoder.bias"))}
    dtypes = parameters_by_dtype(shapes)
    return {
        "path": str(d), "model_type": config.family,
        "architectures": config.architectures or [guessed],
        "layers": config.num_hidden_layers, "hidden_size": config.hidden_size,
        "attention_heads": config.num_attention_heads, "intermediate_size": config.intermediate_size,
        "vocab_size": config.vocab_size, "embedding_size": config.embedding_width,
        "max_position_embeddings": config.max_position_embeddings, "norm_placement": config.norm_placement,
        "position_embedding_type": config.position_embedding_type, "activation": config.hidden_act,
        "labels": config.id2label if any(".out_proj." in k or k.startswith("classifier.") for k in shapes) else None,
        "parameters": sum(dtypes.values()), "dtypes": dtypes, "heads": _heads(shapes),
        "tensor_names": f"transformers ({CLASS_PREFIX[config.family]})",
        **file_facts(d),
    }


def _heads(shapes: dict[str, tuple[tuple[int, ...], str]]) -> list[str]:
    keys = list(shapes)
    heads = []
    if any(".pooler." in k or k.startswith("pooler.") for k in keys):
        heads.append("pooler")
    if any(k.startswith("lm_head.") for k in keys):
        heads.append("masked-LM (tied to word embeddings)")
    if any(k.startswith("discriminator_predictions.") for k in keys):
        heads.append("replaced-token detection")
    for key, label in (("classifier.out_proj.weight", "classifier"), ("classifier.weight", "classifier")):
        if key in shapes:
            heads.append(f"{label} ({shapes[key][0][0]} outputs)")
    if "qa_outputs.weight" in shapes:
        heads.append("question answering (start/end)")
    return heads


class FamilyCheckpoint:
    """The `CheckpointAdapter` of RoBERTa, XLM-R and ELECTRA: BERT's encoder under the family's
    prefix, the family's head names, and the family's class in place of a BERT head."""

    layer_pattern = BERT.layer_pattern  # the encoder's layers, under the family's prefix
    config_class = EncoderFamilyConfig

    def layer_example(self, config: Any) -> str:
        return f"{PREFIX[config.family]}encoder.layer.N.*"

    def read_config(self, directory: Path, **config_overrides: Any) -> EncoderFamilyConfig:
        require_config(directory)
        config = cast(EncoderFamilyConfig, EncoderFamilyConfig.from_pretrained(directory))
        return cast(EncoderFamilyConfig, apply_overrides(config, config_overrides))

    def model_class(self, cls: type[Any], config: Any) -> type[Any]:
        return family_class(cls, config.family)

    def to_hf(self, model: Any, dtype: torch.dtype | None) -> dict[str, Tensor]:
        return to_family_state_dict(model, dtype)

    def from_hf(self, state: dict[str, Tensor], model: Any,
                source: str) -> tuple[dict[str, Tensor], list[str], list[str]]:
        return from_family_state_dict(state, model, source)

    def hf_names(self, keys: list[str], config: Any) -> list[str]:
        return family_names(keys, config.family)

    def architecture_name(self, model: Any) -> str:
        return architecture_name(model)

    def guess_architecture(self, directory: Path, config: Any) -> str:
        return _architecture_from_keys(header_tensors(directory), config.family)

    def inspect(self, directory: Path, config: Any, classes: dict[str, type[Any]]) -> dict[str, Any]:
        return inspect_family(directory, config, classes)


FAMILY = FamilyCheckpoint()
