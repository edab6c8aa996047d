"""The training loop and what surrounds it: configs, optimizers, schedules, checkpoints, DDP.

Names load lazily so that importing a config (e.g. for `--help`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainerConfig": "hanformer.training.config",
    "Trainer": "hanformer.training.trainer",
    "TrainResult": "hanformer.training.trainer",
    "TrainingError": "hanformer.training.loss_guard",
    "BatchSource": "hanformer.training.batch_source",
    "seed_everything": "hanformer.training.trainer",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hanformer.training' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = list(_EXPORTS)
