"""RoBERTa, XLM-RoBERTa and ELECTRA checkpoints in the Hugging Face layout.

The encoder is BERT's under the family's prefix (`roberta.`, `electra.`), so its tensors go
through BERT's translation in models/checkpoint.py (names, the fused Q/K/V, legacy names);
ELECTRA adds `embeddings_project` (our `embeddings.project`). The heads carry each family's own
names (table below). Loading follows BERT's rules: encoder tensors are strict, a head the
checkpoint lacks starts fresh (with a warning), a head of another task is dropped, so
`monologg/koelectra-*-discriminator` (an `ElectraForPreTraining`) fine-tunes under a classifier.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from torch import Tensor

from hanformer.errors import CheckpointError, ConfigError
from hanformer.models.bert import BertModel, BertPreTrainedModel
from hanformer.models.checkpoint import (
    _LAYER_NUMBER,
    TOKENIZER_FILES,
    WEIGHTS_NAME,
    _hf_names,
    _listing,
    _model_type,
    _require_dir,
    _tensor_shapes,
    check_weights_match,
    from_hf_state_dict,
    header_tensors,
    read_state_dict,
    require_floating,
    to_hf_state_dict,
    weight_files,
)
from hanformer.models.encoder_family import (
    CLASS_PREFIX,
    FAMILY_ARCHITECTURES,
    FAMILY_MODEL_TYPES,
    EncoderFamilyConfig,
    architecture_name,
    family_of,
)
from hanformer.models.heads import ARCHITECTURES
from hanformer.models.sizing import check_fits_in_memory
from hanformer.utils.files import atomic_save

log = logging.getLogger("hanformer.models")
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


def _rename(key: str, table: list[tuple[str, str]], src: int) -> str:
    for pair in table:
        if key.startswith(pair[src]):
            return pair[1 - src] + key[len(pair[src]):]
    return key


def _encoder_of(model: BertPreTrainedModel) -> BertModel:
    return model if isinstance(model, BertModel) else model.bert  # type: ignore[return-value]


# --- name translation -----------------------------------------------------------------------

def to_family_state_dict(model: BertPreTrainedModel, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """Our tensors under the family's transformers names (Q/K/V split; tied decoder not repeated)."""
    encoder = _encoder_of(model)
    prefix = "" if encoder is model else PREFIX[family_of(model)]
    out = {prefix + _rename(k, [_PROJECTION], 0): v for k, v in to_hf_state_dict(encoder, dtype).items()}
    if encoder is not model:
        for key, value in model.state_dict().items():
            if not key.startswith("bert."):
                value = value.detach().to(dtype) if dtype is not None and value.is_floating_point() else value.detach()
                out[_rename(key, _HEAD_NAMES, 0)] = value.contiguous()
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
            encoder_state[_rename(key, [_PROJECTION], 1)] = value
        elif key != _TIED:
            heads[_rename(key, _HEAD_NAMES, 1)] = value
    ours, missing, unused = from_hf_state_dict(encoder_state, encoder, source)
    if encoder is model:
        return ours, missing, unused + list(heads)
    require_floating(heads, source)
    wanted = {k: v for k, v in model.state_dict().items() if not k.startswith("bert.")}
    for key in wanted.keys() & heads.keys():
        if tuple(heads[key].shape) != tuple(wanted[key].shape):
            raise CheckpointError(
                f"{source}: tensor {_rename(key, _HEAD_NAMES, 0)} has shape {tuple(heads[key].shape)} in the "
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
            out.append(PREFIX[family] + _rename(_hf_names([key[len("bert."):]])[0], [_PROJECTION], 0))
        else:
            out.append(_rename(key, _HEAD_NAMES, 0))
    return out


# --- classes --------------------------------------------------------------------------------

def family_class(cls: type[M], family: str) -> type[M]:
    """The family's class for `cls`: itself when it is one, else the one in its place
    (`BertForTokenClassification` -> the class of `XLMRobertaForTokenClassification`)."""
    suffix = getattr(cls, "hf_suffix", None) or cls.__name__.removeprefix("Bert")
    target = FAMILY_ARCHITECTURES.get(CLASS_PREFIX[family] + suffix)
    if target is None or not issubclass(target, cls):
        raise CheckpointError(f"a {family} checkpoint does not load as {cls.__name__}; {family} classes: "
                              f"{', '.join(_names_of(family))}")
    return target


def checkpoint_class(cls: type[M], directory: str | Path) -> type[M]:
    """`cls`, or the family's class in its place when `directory` holds a RoBERTa, XLM-R or ELECTRA
    checkpoint (for code that picks a BERT head by task)."""
    family = _model_type(_require_dir(directory))
    return family_class(cls, family) if family in FAMILY_MODEL_TYPES else cls


def _names_of(family: str) -> list[str]:
    return [name for name in FAMILY_ARCHITECTURES if name.startswith(CLASS_PREFIX[family])]


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
    return name if name in FAMILY_ARCHITECTURES else CLASS_PREFIX[family] + "Model"


# --- reading and writing --------------------------------------------------------------------

def save_pretrained(model: BertPreTrainedModel, directory: str | Path, dtype: torch.dtype | None = None) -> None:
    """config.json + model.safetensors in the family's layout, both written atomically."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.cpu() for k, v in to_family_state_dict(model, dtype).items()}
    atomic_save(d / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    dataclasses.replace(model.config, architectures=[architecture_name(model)]).save_pretrained(d)


def read_family_config(directory: str | Path, **config_overrides: Any) -> EncoderFamilyConfig:
    """config.json of a family checkpoint, with `config_overrides` applied (as from_pretrained's)."""
    d = _require_dir(directory)
    if not (d / "config.json").is_file():
        raise CheckpointError(f"{d}: no config.json (not a checkpoint directory in the Hugging Face layout)")
    config = cast(EncoderFamilyConfig, EncoderFamilyConfig.from_pretrained(d))
    if not config_overrides:
        return config
    if "num_labels" in config_overrides and "id2label" not in config_overrides:
        config_overrides["id2label"] = None  # the checkpoint's label names no longer apply
    try:
        return dataclasses.replace(config, **config_overrides)
    except TypeError as e:
        raise ConfigError(f"from_pretrained: {e}") from None


def load_pretrained(cls: type[M], directory: str | Path, *, dtype: torch.dtype | None = None,
                    **config_overrides: Any) -> M:
    d = _require_dir(directory)
    config = read_family_config(d, **config_overrides)
    cls = family_class(cls, config.family)
    # Everything that can fail is checked on the headers before the model is allocated.
    check_weights_match(cls, config, d, header_tensors(d), from_family_state_dict, _LAYER_NUMBER,
                        f"{PREFIX[config.family]}encoder.layer.N.*")
    check_fits_in_memory(config, str(d / "config.json"))
    model = cls(config)
    ours, missing, unused = from_family_state_dict(read_state_dict(d), model, source=str(d))
    model.load_state_dict(ours, strict=False)
    if missing:
        log.warning("%s: %s not in the checkpoint, newly initialised (train before use): %s",
                    d, "heads" if len(missing) > 1 else "head", _listing(family_names(missing, config.family)))
    if unused:
        log.info("%s: unused head tensors of another task dropped: %s", d,
                 _listing(family_names(unused, config.family)))
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    return model


def load_family_model(directory: str | Path, architecture: str | None = None, *, dtype: torch.dtype | None = None,
                      **config_overrides: Any) -> BertPreTrainedModel:
    """`load_model` for the families: the class named by `architecture` or config.json (a BERT
    name such as "BertModel" means the family's equivalent), else guessed from the tensors."""
    d = _require_dir(directory)
    config = cast(EncoderFamilyConfig, EncoderFamilyConfig.from_pretrained(d))
    name = architecture or (config.architectures[0] if config.architectures else None) \
        or _architecture_from_keys(header_tensors(d), config.family)
    cls = FAMILY_ARCHITECTURES.get(name) or ARCHITECTURES.get(name)
    if cls is None:
        raise CheckpointError(f"{d}: architecture {name!r} is not supported for model_type {config.family!r}; "
                              f"choose one of {', '.join(_names_of(config.family))}")
    return load_pretrained(cls, d, dtype=dtype, **config_overrides)


def inspect_family(directory: str | Path) -> dict[str, Any]:
    """`inspect_checkpoint` for RoBERTa / XLM-R / ELECTRA checkpoints: the same keys (plus
    `model_type` and `embedding_size`), read without loading the weights."""
    d = _require_dir(directory)
    config = cast(EncoderFamilyConfig, EncoderFamilyConfig.from_pretrained(d))
    header = header_tensors(d)
    guessed = _architecture_from_keys(header, config.family)
    named = (config.architectures or [guessed])[0]
    check_weights_match(FAMILY_ARCHITECTURES.get(named, FAMILY_ARCHITECTURES[guessed]), config, d, header,
                        from_family_state_dict, _LAYER_NUMBER, f"{PREFIX[config.family]}encoder.layer.N.*")
    shapes = {k: v for k, v in _tensor_shapes(header).items()
              if not k.endswith(("position_ids", "token_type_ids", _TIED, "lm_head.decoder.bias"))}
    dtypes: dict[str, int] = {}
    for shape, dt in shapes.values():
        dtypes[dt] = dtypes.get(dt, 0) + int(torch.Size(shape).numel())
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
        "weight_files": [p.name for p in weight_files(d)],
        "weight_bytes": sum(p.stat().st_size for p in weight_files(d) if p.is_file()),
        "tokenizer_files": [n for n in TOKENIZER_FILES if (d / n).is_file()],
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
