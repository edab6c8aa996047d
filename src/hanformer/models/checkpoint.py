"""Checkpoints in the Hugging Face layout: save, load, inspect, convert.

A checkpoint directory holds `config.json` + `model.safetensors` (+ tokenizer files). Tensor
names are transformers' (`bert.encoder.layer.0.attention.self.query.weight`, ...), so what we
save loads into transformers' matching class and the other way round. Our modules use their
own, shorter names and a fused Q/K/V projection; the table below translates between the two.

Loading is forgiving where transformers is (old `LayerNorm.gamma/beta` names, a `bert.` prefix
present or absent, task heads missing -> freshly initialised, heads of another task -> dropped)
and strict everywhere else: missing or unexpected encoder tensors and wrong shapes are errors
that name the tensors. Weights are read only from safetensors, or from PyTorch files with
`torch.load(weights_only=True)`, which cannot run code hidden in a pickle.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from hanformer.errors import CheckpointError, ConfigError, where
from hanformer.models.base import PreTrainedModel
from hanformer.models.bert import BertModel, BertPreTrainedModel
from hanformer.models.config import BertConfig
from hanformer.models.encoder_family import FAMILY_MODEL_TYPES
from hanformer.models.hf_cache import locate_model
from hanformer.models.sizing import check_fits_in_memory, check_layer_count
from hanformer.utils.files import atomic_save

log = logging.getLogger("hanformer.models")
M = TypeVar("M", bound=BertPreTrainedModel)

WEIGHTS_NAME = "model.safetensors"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

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
# Layer numbers in transformers' BERT tensor names (compared with num_hidden_layers).
_LAYER_NUMBER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")
# Which config.json keys decide a tensor's shape (named when the shape is wrong); default hidden_size.
_SHAPE_KEYS = [
    (re.compile(r"word_embeddings"), "vocab_size, hidden_size"),
    (re.compile(r"position_embeddings"), "max_position_embeddings, hidden_size"),
    (re.compile(r"token_type_embeddings"), "type_vocab_size, hidden_size"),
    (re.compile(r"predictions\.bias"), "vocab_size"),
    (re.compile(r"intermediate\.dense|layer\.\d+\.output\.dense"), "intermediate_size, hidden_size"),
    (re.compile(r"classifier|qa_outputs"), "num_labels, hidden_size"),
]


def shape_keys(name: str, table: list[tuple[re.Pattern[str], str]], default: str) -> str:
    """The config.json keys that `name`'s shape comes from."""
    return next((keys for pattern, keys in table if pattern.search(name)), default)


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^(.*?)" + re.escape(template).replace(r"\{i\}", r"(\d+)"))


_OURS_TO_HF = [(_compile(a), b) for a, b in _NAME_MAP]
_HF_TO_OURS = [(_compile(b), a) for a, b in _NAME_MAP]


def _rename(key: str, table: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, target in table:
        m = pattern.match(key)
        if m:
            groups = m.groups()
            new = groups[0] + (target.replace("{i}", groups[1]) if "{i}" in target else target)
            return new + key[m.end():]
    return key


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
            out[_rename(key, _OURS_TO_HF)] = value.contiguous()
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
            ours[_rename(key, _HF_TO_OURS)] = value
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
    missing = [k for k in expected if k not in ours]
    is_head = lambda k: k.startswith(_HEAD_PREFIXES) or k.startswith(tuple("bert." + p for p in _HEAD_PREFIXES))  # noqa: E731
    bad_unexpected = [k for k in unexpected if not is_head(k)]
    bad_missing = [k for k in missing if not is_head(k)]
    if bad_missing:
        raise CheckpointError(f"{source}: missing tensors {_listing(_hf_names(bad_missing))} "
                              f"(the checkpoint does not fit a {type(model).__name__} with this config.json)")
    if bad_unexpected:
        raise CheckpointError(f"{source}: unexpected tensors {_listing(_hf_names(bad_unexpected))} "
                              f"(not part of a {type(model).__name__} with this config.json)")
    for key in list(ours):
        if key in unexpected:
            del ours[key]
            continue
        want = tuple(expected[key].shape)
        if tuple(ours[key].shape) != want:
            name = _hf_names([key])[0]
            raise CheckpointError(
                f"{source}: tensor {name} has shape {tuple(ours[key].shape)} in the checkpoint but the model "
                f"expects {want} from config.json's {shape_keys(name, _SHAPE_KEYS, 'hidden_size')} (config.json "
                "does not match the weights"
                + ("; pass num_labels matching the checkpoint" if "classifier" in key or "qa_outputs" in key else "")
                + ")")
    return ours, missing, unexpected


def _hf_names(keys: Iterable[str]) -> list[str]:
    out = []
    for k in keys:
        m = _QKV_OURS.match(k)
        out.append(f"{m.group(1)}encoder.layer.{m.group(2)}.attention.self.query/key/value.{m.group(3)}"
                   if m else _rename(k, _OURS_TO_HF))
    return out


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


# --- reading and writing files ----------------------------------------------------------------

def _require_dir(directory: str | Path) -> Path:
    """The checkpoint folder: a local path, or a model name found in the Hugging Face cache."""
    d = locate_model(directory)
    if not d.is_dir():
        raise CheckpointError(f"{d} is a file; pass the checkpoint directory (with config.json and model.safetensors)")
    return d


def _containing_roots(directory: Path) -> list[Path]:
    """Folders a checkpoint's files may live in: the checkpoint itself, and for a Hugging Face
    cache snapshot (snapshots/<hash>/ whose files link into ../../blobs/) the repository's blobs."""
    root = directory.resolve()
    roots = [root]
    blobs = root.parent.parent / "blobs"
    if root.parent.name == "snapshots" and blobs.is_dir():
        roots.append(blobs.resolve())
    return roots


def checkpoint_member(directory: Path, name: object, source: str, what: str) -> Path:
    """`directory / name` for a file name read from the checkpoint's own files (a shard index).

    Such names are data, not trusted paths: one that is absolute, climbs with `..`, or leads out
    of the folder through a link would make loading read any file on the machine.
    """
    problem = _unsafe_name(directory, name)
    if problem is not None:
        raise CheckpointError(f"{source}: {what} {name!r}, which {problem}; a checkpoint may only name files "
                              f"inside its own folder {directory} (the file is damaged or was not written by a "
                              "model library)")
    return directory / str(name)


def _unsafe_name(directory: Path, name: object) -> str | None:
    """Why `name` may not be opened inside `directory`, or None when it may."""
    if not isinstance(name, str) or not name.strip() or "\0" in name:
        return "is not a file name"
    if Path(name).is_absolute() or name.startswith(("/", "\\")):
        return "is an absolute path"
    if ".." in Path(name).parts or ".." in name.split("\\"):
        return "climbs out of the folder with '..'"
    target = (directory / name).resolve()
    if not any(target.is_relative_to(root) for root in _containing_roots(directory)):
        return f"leads out of the folder (to {target}) through a link"
    return None


def _index_weight_map(index: Path) -> dict[str, str]:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        weight_map = data["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{index}: not a valid shard index ({_one_line(e)})") from None
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{where(index, field='weight_map')}: must map tensor names to shard file names")
    return weight_map


def weight_files(directory: str | Path) -> list[Path]:
    """The weight file(s) of a checkpoint: safetensors preferred, sharded indexes followed."""
    d = _require_dir(directory)
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = d / index_name
        if index.is_file():
            weight_map = _index_weight_map(index)
            for tensor, name in weight_map.items():
                checkpoint_member(d, name, where(index, field="weight_map"), f"entry {tensor!r} names")
            return [d / name for name in sorted(set(weight_map.values()))]
    for name in (WEIGHTS_NAME, "pytorch_model.bin"):
        if (d / name).is_file():
            return [d / name]
    raise CheckpointError(f"{d}: no model.safetensors or pytorch_model.bin found")


def _existing_shard(path: Path) -> Path:
    if not path.is_file():
        raise CheckpointError(f"{path}: shard listed in the index is missing")
    return path


def _unreadable_safetensors(path: Path, e: BaseException) -> CheckpointError:
    return CheckpointError(f"{path}: cannot read safetensors file ({_one_line(e)}); the file is "
                           "truncated or corrupt, copy or save it again")


def _read_torch_file(path: Path) -> dict[str, Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read PyTorch weights safely ({_one_line(e)}); only plain "
                              "tensor files load (weights_only=True); convert it to safetensors") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (a state dict)")
    return loaded


def read_state_dict(directory: str | Path) -> dict[str, Tensor]:
    """All tensors of a checkpoint directory, on the CPU, never unpickling arbitrary objects."""
    from safetensors.torch import load_file

    state: dict[str, Tensor] = {}
    for path in map(_existing_shard, weight_files(directory)):
        if path.suffix == ".safetensors":
            try:
                state.update(load_file(str(path), device="cpu"))
            except Exception as e:  # SafetensorError, OSError: truncated / corrupt header
                raise _unreadable_safetensors(path, e) from None
        else:
            state.update(_read_torch_file(path))
    return state


# safetensors header dtype names <-> torch dtypes.
SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U64": torch.uint64, "U32": torch.uint32, "U16": torch.uint16, "U8": torch.uint8, "BOOL": torch.bool,
}
_DTYPE_NAMES = {dtype: name for name, dtype in SAFETENSORS_DTYPES.items()}


def dtype_name(dtype: torch.dtype) -> str:
    """'F32', 'BF16', 'I32', ... as safetensors headers (and `inspect`) name dtypes."""
    return _DTYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


def _meta_tensor(shape: list[int], dtype: str, key: str, path: Path) -> Tensor:
    if dtype not in SAFETENSORS_DTYPES:
        raise CheckpointError(f"{path}: tensor {key} has dtype {dtype}, which PyTorch cannot load here; "
                              "model weights are F32, F16 or BF16")
    return torch.empty(shape, dtype=SAFETENSORS_DTYPES[dtype], device="meta")


def header_tensors(directory: str | Path) -> dict[str, Tensor]:
    """Every tensor of a checkpoint as a meta tensor (name, shape, dtype; no data).

    safetensors files give this from their headers without reading the weights, so shapes can be
    checked against config.json before a model is built; PyTorch files have to be loaded.
    """
    from safetensors import safe_open

    out: dict[str, Tensor] = {}
    for path in map(_existing_shard, weight_files(directory)):
        if path.suffix != ".safetensors":
            out.update({k: t.to("meta") for k, t in _read_torch_file(path).items()})
            continue
        try:
            with safe_open(str(path), framework="pt") as f:
                slices = {key: f.get_slice(key) for key in f.keys()}
                header = {key: (list(s.get_shape()), str(s.get_dtype())) for key, s in slices.items()}
        except Exception as e:
            raise _unreadable_safetensors(path, e) from None
        out.update({key: _meta_tensor(shape, dtype, key, path) for key, (shape, dtype) in header.items()})
    return out


def require_floating(state: dict[str, Tensor], source: str) -> None:
    """Refuse integer or bool tensors where weights belong (call after dropping known buffers such
    as position_ids): `load_state_dict` would cast them to float silently, giving a model of
    garbage that loads without complaint."""
    for key, value in state.items():
        if not value.is_floating_point():
            raise CheckpointError(f"{source}: tensor {key} has dtype {dtype_name(value.dtype)}, but model weights "
                                  "are floating point (F32, F16 or BF16); the file is damaged or was not saved "
                                  "from a model")


def check_weights_match(cls: type[Any], config: Any, directory: Path, header: dict[str, Tensor],
                        convert: Callable[..., Any], layer_pattern: re.Pattern[str], layer_example: str) -> None:
    """Check the weights' names, shapes and dtypes against config.json without allocating anything.

    The layer count is compared first (from the tensor names), so that a config asking for
    200,000 layers fails at once; then `convert` (the family's `from_hf_state_dict`) maps the
    header's meta tensors onto a skeleton of the model built on the meta device, which names any
    missing, unexpected, misshapen or non-float tensor exactly as a real load would.
    """
    check_layer_count(config, header, layer_pattern, str(directory / "config.json"), layer_example)
    with torch.device("meta"):
        skeleton = cls(config)
    convert(header, skeleton, str(directory))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


def save_pretrained(model: BertPreTrainedModel, directory: str | Path, dtype: torch.dtype | None = None) -> None:
    """config.json + model.safetensors, both written atomically."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.cpu() for k, v in to_hf_state_dict(model, dtype).items()}
    atomic_save(d / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    config = dataclasses.replace(model.config, architectures=[type(model).__name__])
    config.save_pretrained(d)


def load_pretrained(cls: type[M], directory: str | Path, *, dtype: torch.dtype | None = None,
                    **config_overrides: Any) -> M:
    d = _require_dir(directory)
    if _model_type(d) in FAMILY_MODEL_TYPES:  # RoBERTa, XLM-R, ELECTRA: models/family_checkpoint.py
        from hanformer.models import family_checkpoint

        return family_checkpoint.load_pretrained(cls, d, dtype=dtype, **config_overrides)
    if not (d / "config.json").is_file():
        raise CheckpointError(f"{d}: no config.json (not a checkpoint directory in the Hugging Face layout)")
    config = BertConfig.from_pretrained(d)
    if config_overrides:
        if "num_labels" in config_overrides and "id2label" not in config_overrides:
            config_overrides["id2label"] = None  # the checkpoint's label names no longer apply
        try:
            config = dataclasses.replace(config, **config_overrides)
        except TypeError as e:
            raise ConfigError(f"from_pretrained: {e}") from None
    # Everything that can fail is checked on the headers before the model is allocated.
    check_weights_match(cls, config, d, header_tensors(d), from_hf_state_dict, _LAYER_NUMBER, "encoder.layer.N.*")
    check_fits_in_memory(config, str(d / "config.json"))
    model = cls(config)
    ours, missing, unused = from_hf_state_dict(read_state_dict(d), model, source=str(d))
    model.load_state_dict(ours, strict=False)
    if missing:
        log.warning("%s: %s not in the checkpoint, newly initialised (train before use): %s",
                    d, "heads" if len(missing) > 1 else "head", _listing(_hf_names(missing)))
    if unused:
        log.info("%s: unused head tensors of another task dropped: %s", d, _listing(_hf_names(unused)))
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    return model


# --- whole-checkpoint operations --------------------------------------------------------------

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


def _tensor_shapes(header: dict[str, Tensor]) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype name) of `header_tensors`."""
    return {key: (tuple(t.shape), dtype_name(t.dtype)) for key, t in header.items()}


def _model_type(directory: Path) -> str | None:
    """config.json's model_type, or None when it cannot be read (the BERT path reports why)."""
    try:
        return json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def load_model(directory: str | Path, architecture: str | None = None, *, dtype: torch.dtype | None = None,
               **config_overrides: Any) -> PreTrainedModel:
    """Load a checkpoint as the class named in its config.json `architectures` (or `architecture`).

    Without a recorded architecture the class is guessed from the tensors present.
    """
    from hanformer.models.heads import ARCHITECTURES

    d = _require_dir(directory)
    if _model_type(d) == "gpt2":  # decoder-only checkpoints: models/gpt.py
        from hanformer.models.gpt import GPT_ARCHITECTURES, GPTConfig

        gpt_config = GPTConfig.from_pretrained(d)
        gpt_name = architecture or (gpt_config.architectures[0] if gpt_config.architectures else "GPT2LMHeadModel")
        if gpt_name not in GPT_ARCHITECTURES:
            raise CheckpointError(f"{d}: architecture {gpt_name!r} is not supported; choose one of "
                                  f"{', '.join(GPT_ARCHITECTURES)}")
        return GPT_ARCHITECTURES[gpt_name].from_pretrained(d, dtype=dtype, **config_overrides)
    if _model_type(d) in FAMILY_MODEL_TYPES:
        from hanformer.models.family_checkpoint import load_family_model

        return load_family_model(d, architecture, dtype=dtype, **config_overrides)
    config = BertConfig.from_pretrained(d)
    name = architecture or (config.architectures[0] if config.architectures else None)
    if name is None:
        name = _architecture_from_keys(header_tensors(d))
    if name not in ARCHITECTURES:
        raise CheckpointError(f"{d}: architecture {name!r} is not supported; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name].from_pretrained(d, dtype=dtype, **config_overrides)


def inspect_checkpoint(directory: str | Path) -> dict[str, Any]:
    """What a checkpoint holds, read from config.json and the safetensors header (no weights loaded)."""
    d = _require_dir(directory)
    if _model_type(d) == "gpt2":
        from hanformer.models.gpt_checkpoint import inspect_gpt

        return inspect_gpt(d)
    if _model_type(d) in FAMILY_MODEL_TYPES:
        from hanformer.models.family_checkpoint import inspect_family

        return inspect_family(d)
    from hanformer.models.heads import ARCHITECTURES

    config = BertConfig.from_pretrained(d)
    header = header_tensors(d)
    guessed = _architecture_from_keys(header)
    named = (config.architectures or [guessed])[0]
    check_weights_match(ARCHITECTURES.get(named, ARCHITECTURES[guessed]), config, d, header, from_hf_state_dict,
                        _LAYER_NUMBER, "encoder.layer.N.*")
    shapes = _tensor_shapes(header)
    counted = {k: v for k, v in shapes.items()
               if not k.endswith((*_DERIVED, "cls.predictions.decoder.bias"))}
    dtypes: dict[str, int] = {}
    total = 0
    for shape, dt in counted.values():
        n = 1
        for s in shape:
            n *= s
        total += n
        dtypes[dt] = dtypes.get(dt, 0) + n
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
        "parameters": total,
        "dtypes": dtypes,
        "heads": heads,
        "tensor_names": "legacy (LayerNorm.gamma/beta)" if legacy else "transformers",
        "weight_files": [p.name for p in weight_files(d)],
        "weight_bytes": sum(p.stat().st_size for p in weight_files(d) if p.is_file()),
        "tokenizer_files": [n for n in TOKENIZER_FILES if (d / n).is_file()],
    }


def convert_checkpoint(source: str | Path, target: str | Path, *, architecture: str | None = None,
                       dtype: torch.dtype | None = None) -> Path:
    """Rewrite any loadable checkpoint (old names, .bin weights, shards) as a clean Hugging Face one.

    The result is config.json + model.safetensors with current tensor names (+ the tokenizer
    files copied), loadable by hanformer and transformers alike.
    """
    src, dst = _require_dir(source), Path(target)
    if src.resolve() == dst.resolve():
        raise CheckpointError(f"convert: source and target are the same directory ({src}); choose a new target")
    model = load_model(src, architecture)
    model.save_pretrained(dst, dtype=dtype)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    return dst
