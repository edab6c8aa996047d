"""What every model family (BERT, GPT, RoBERTa/ELECTRA) shares: its config, size, device and checkpoint I/O.

Checkpoints are read and written by `hanformer.models.checkpoint`, which finds the family's
adapter in the registry. That module is looked up when a checkpoint is first read or written,
not imported here: the registry lists the model classes, which are defined on top of this one.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from hanformer.models.common.sizing import check_fits_in_memory

P = TypeVar("P", bound="PreTrainedModel")

_CHECKPOINT_IO = "hanformer.models.checkpoint"


class PreTrainedModel(nn.Module):
    config_class: ClassVar[type]

    def __init__(self, config: Any) -> None:
        super().__init__()
        # Refuse a model that cannot fit before its layers are allocated (a skeleton on the
        # meta device, as checkpoint loading builds to check shapes, allocates nothing).
        if torch.get_default_device().type == "cpu" and hasattr(config, "parameter_count"):
            check_fits_in_memory(config, type(config).__name__)
        self.config = config

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> None:
        """Write config.json + model.safetensors that transformers' matching class loads."""
        importlib.import_module(_CHECKPOINT_IO).save_pretrained(self, directory, dtype=dtype)

    @classmethod
    def from_pretrained(cls: type[P], directory: str | Path, *, dtype: torch.dtype | None = None,
                        **config_overrides: Any) -> P:
        """Load a checkpoint directory saved by hanformer or transformers.

        `config_overrides` change the config before building, e.g. `num_labels=3` to put a new
        3-way classifier on a pretrained encoder (heads absent from the checkpoint start fresh).
        """
        model: P = importlib.import_module(_CHECKPOINT_IO).load_pretrained(cls, directory, dtype=dtype,
                                                                           **config_overrides)
        return model
