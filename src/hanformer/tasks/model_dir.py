"""Find the model folder a path names: the folder itself, its `best/` or `final/`, or a cached hub model."""

from __future__ import annotations

import os
from pathlib import Path

from hanformer.errors import CheckpointError
from hanformer.models.hf_cache import locate_model


def resolve_model_dir(path: str | os.PathLike[str]) -> Path:
    """A directory with config.json: PATH itself, or PATH/best, or PATH/final; a PATH that is not
    a folder may name a model in the Hugging Face cache (`klue/bert-base`)."""
    p = locate_model(path)
    for candidate in (p, p / "best", p / "final"):
        if (candidate / "config.json").is_file():
            return candidate
    raise CheckpointError(f"{p}: no model here (no config.json in it, nor in best/ or final/)")
