"""Checkpoint files in the Hugging Face layout, for any model family: read, check, write.

A checkpoint directory holds `config.json` + weights (`model.safetensors`, shards with an index,
or `pytorch_model.bin`) + tokenizer files. This module reads and writes those files and runs the
checks every family shares (shard-index paths stay inside the folder, weights are floating
point, the layer count and every shape match config.json, the model fits in memory), all before
a model is allocated. It knows nothing of tensor names: each family has a `CheckpointAdapter`
(`bert/checkpoint.py`, `gpt/checkpoint.py`, `bert/family_checkpoint.py`) that translates between our
names and transformers', and reads its config. Weights are read only from safetensors, or from
PyTorch files with `torch.load(weights_only=True)`, which cannot run code hidden in a pickle.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from hanformer.errors import CheckpointError, ConfigError, where
from hanformer.models.common.sizing import check_fits_in_memory, check_layer_count
from hanformer.models.hf_cache import locate_model
from hanformer.utils.files import atomic_save

log = logging.getLogger("hanformer.models")
M = TypeVar("M", bound=nn.Module)

WEIGHTS_NAME = "model.safetensors"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class CheckpointAdapter(Protocol):
    """What a model family supplies to read and write its checkpoints (one instance per family)."""

    # Finds layer numbers in the family's tensor names (group 1), to compare with config.json.
    layer_pattern: re.Pattern[str]
    # The family's config (its `from_pretrained(directory)` reads config.json as it is).
    config_class: type[Any]

    def layer_example(self, config: Any) -> str:
        """How the family's layer tensors are named, for messages (`encoder.layer.N.*`)."""

    def read_config(self, directory: Path, **config_overrides: Any) -> Any:
        """config.json as the family's config, with `config_overrides` applied."""

    def model_class(self, cls: type[Any], config: Any) -> type[Any]:
        """The class that loads this checkpoint in place of `cls` (usually `cls` itself)."""

    def to_hf(self, model: Any, dtype: torch.dtype | None) -> dict[str, Tensor]:
        """The model's tensors under transformers' names and layout."""

    def from_hf(self, state: dict[str, Tensor], model: Any,
                source: str) -> tuple[dict[str, Tensor], list[str], list[str]]:
        """transformers' tensors -> (our state dict for `model`, head tensors the checkpoint lacks,
        head tensors `model` has no use for); wrong tensors raise CheckpointError."""

    def hf_names(self, keys: list[str], config: Any) -> list[str]:
        """Our tensor names as the checkpoint names them (for messages)."""

    def architecture_name(self, model: Any) -> str:
        """transformers' class name for `model`, written to config.json `architectures`."""

    def guess_architecture(self, directory: Path, config: Any) -> str:
        """The class name to load when config.json records none."""

    def inspect(self, directory: Path, config: Any, classes: dict[str, type[Any]]) -> dict[str, Any]:
        """What the checkpoint holds (see `inspect_checkpoint`), read without loading weights;
        `classes` are the family's architectures by name (from the registry)."""


def shape_keys(name: str, table: list[tuple[re.Pattern[str], str]], default: str) -> str:
    """The config.json keys that `name`'s shape comes from."""
    return next((keys for pattern, keys in table if pattern.search(name)), default)

def listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")

def require_dir(directory: str | Path) -> Path:
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
    d = require_dir(directory)
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
                        adapter: CheckpointAdapter) -> None:
    """Check the weights' names, shapes and dtypes against config.json without allocating anything.

    The layer count is compared first (from the tensor names), so that a config asking for
    200,000 layers fails at once; then the family's `adapter.from_hf` maps the header's meta
    tensors onto a skeleton of the model built on the meta device, which names any missing,
    unexpected, misshapen or non-float tensor exactly as a real load would.
    """
    check_layer_count(config, header, adapter.layer_pattern, str(directory / "config.json"),
                      adapter.layer_example(config))
    with torch.device("meta"):
        skeleton = cls(config)
    adapter.from_hf(header, skeleton, str(directory))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]

def tensor_shapes(header: dict[str, Tensor]) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype name) of `header_tensors`."""
    return {key: (tuple(t.shape), dtype_name(t.dtype)) for key, t in header.items()}


def model_type(directory: Path) -> str | None:
    """config.json's model_type, or None when it cannot be read (the BERT path reports why)."""
    try:
        return json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def apply_overrides(config: Any, config_overrides: dict[str, Any], relabel: bool = True) -> Any:
    """`config` with `config_overrides` (from_pretrained's keyword arguments) applied.

    With `relabel`, a new `num_labels` drops the checkpoint's label names, which no longer apply.
    """
    if not config_overrides:
        return config
    if relabel and "num_labels" in config_overrides and "id2label" not in config_overrides:
        config_overrides["id2label"] = None
    try:
        return dataclasses.replace(config, **config_overrides)
    except TypeError as e:
        raise ConfigError(f"from_pretrained: {e}") from None


def require_config(directory: Path) -> Path:
    """`directory/config.json`, which every checkpoint needs."""
    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory}: no config.json (not a checkpoint directory in the Hugging Face layout)")
    return path


def save_pretrained(model: Any, directory: str | Path, adapter: CheckpointAdapter,
                    dtype: torch.dtype | None = None) -> None:
    """config.json + model.safetensors in the family's layout, both written atomically."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.cpu() for k, v in adapter.to_hf(model, dtype).items()}
    atomic_save(d / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    dataclasses.replace(model.config, architectures=[adapter.architecture_name(model)]).save_pretrained(d)


def load_pretrained(cls: type[M], directory: str | Path, adapter: CheckpointAdapter, *,
                    dtype: torch.dtype | None = None, **config_overrides: Any) -> M:
    """Build `cls` (or the class the adapter puts in its place) from a checkpoint directory.

    Everything that can fail is checked on the headers before the model is allocated. Head
    tensors the checkpoint lacks start fresh (with a warning); those of another task are dropped.
    """
    d = require_dir(directory)
    config = adapter.read_config(d, **config_overrides)
    cls = adapter.model_class(cls, config)
    check_weights_match(cls, config, d, header_tensors(d), adapter)
    check_fits_in_memory(config, str(d / "config.json"))
    model = cls(config)
    ours, missing, unused = adapter.from_hf(read_state_dict(d), model, str(d))
    model.load_state_dict(ours, strict=False)
    if missing:
        log.warning("%s: %s not in the checkpoint, newly initialised (train before use): %s",
                    d, "heads" if len(missing) > 1 else "head", listing(adapter.hf_names(missing, config)))
    if unused:
        log.info("%s: unused head tensors of another task dropped: %s", d, listing(adapter.hf_names(unused, config)))
    if dtype is not None:
        model = model.to(dtype)
    model.eval()
    return model


def parameters_by_dtype(shapes: dict[str, tuple[tuple[int, ...], str]]) -> dict[str, int]:
    """dtype name -> number of parameters stored in it, from `tensor_shapes`."""
    dtypes: dict[str, int] = {}
    for shape, dtype in shapes.values():
        dtypes[dtype] = dtypes.get(dtype, 0) + int(torch.Size(shape).numel())
    return dtypes


def file_facts(directory: Path) -> dict[str, Any]:
    """The files part of `inspect_checkpoint`: weight files, their bytes, tokenizer files."""
    files = weight_files(directory)
    return {
        "weight_files": [p.name for p in files],
        "weight_bytes": sum(p.stat().st_size for p in files if p.is_file()),
        "tokenizer_files": [n for n in TOKENIZER_FILES if (directory / n).is_file()],
    }
