"""Whole checkpoints of any family: load (as the class config.json names), save, inspect, convert.

The entry points pick the family's adapter and class from `models/registry.py`, and leave the
files to `models/hub.py`: this module holds no tensor names and no file format. Model classes
reach it through `from_pretrained` / `save_pretrained` (`models/common/base.py`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, TypeVar

import torch

from hanformer.errors import CheckpointError
from hanformer.models import hub
from hanformer.models.common.base import PreTrainedModel
from hanformer.models.hub import TOKENIZER_FILES, model_type, require_dir
from hanformer.models.registry import (
    adapter_for_checkpoint,
    adapter_for_class,
    architecture_class,
    classes_read_by,
)

P = TypeVar("P", bound=PreTrainedModel)


def save_pretrained(model: PreTrainedModel, directory: str | Path, dtype: torch.dtype | None = None) -> None:
    """config.json + model.safetensors in the layout of the model's family, written atomically."""
    hub.save_pretrained(model, directory, adapter_for_class(type(model)), dtype)


def load_pretrained(cls: type[P], directory: str | Path, *, dtype: torch.dtype | None = None,
                    **config_overrides: Any) -> P:
    """`cls.from_pretrained`: a BERT class reads a RoBERTa / XLM-R / ELECTRA checkpoint as the
    family's class in its place."""
    d = require_dir(directory)
    adapter = adapter_for_class(cls, model_type(d))
    return hub.load_pretrained(cls, d, adapter, dtype=dtype, **config_overrides)


def load_model(directory: str | Path, architecture: str | None = None, *, dtype: torch.dtype | None = None,
               **config_overrides: Any) -> PreTrainedModel:
    """Load a checkpoint as the class named in its config.json `architectures` (or `architecture`).

    Without a recorded architecture the class is guessed from the tensors present (GPT-2
    checkpoints load as `GPT2LMHeadModel`).
    """
    d = require_dir(directory)
    kind = model_type(d)
    adapter = adapter_for_checkpoint(kind)
    config = adapter.config_class.from_pretrained(d)
    name = architecture or (config.architectures[0] if config.architectures else None) \
        or adapter.guess_architecture(d, config)
    model: PreTrainedModel = architecture_class(name, kind, str(d)).from_pretrained(d, dtype=dtype, **config_overrides)
    return model


def inspect_checkpoint(directory: str | Path) -> dict[str, Any]:
    """What a checkpoint holds, read from config.json and the safetensors header (no weights loaded)."""
    d = require_dir(directory)
    adapter = adapter_for_checkpoint(model_type(d))
    return adapter.inspect(d, adapter.config_class.from_pretrained(d), classes_read_by(adapter))


def convert_checkpoint(source: str | Path, target: str | Path, *, architecture: str | None = None,
                       dtype: torch.dtype | None = None) -> Path:
    """Rewrite any loadable checkpoint (old names, .bin weights, shards) as a clean Hugging Face one.

    The result is config.json + model.safetensors with current tensor names (+ the tokenizer
    files copied), loadable by hanformer and transformers alike.
    """
    src, dst = require_dir(source), Path(target)
    if src.resolve() == dst.resolve():
        raise CheckpointError(f"convert: source and target are the same directory ({src}); choose a new target")
    model = load_model(src, architecture)
    model.save_pretrained(dst, dtype=dtype)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    return dst
