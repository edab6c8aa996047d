"""Settings of `embed` (kept apart from the model code so the CLI can build its flags without torch)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from hanformer.utils.config import setting


@dataclasses.dataclass
class EmbedConfig:
    batch_size: int = setting(32, "sentences per forward pass")
    max_length: int | None = setting(None, "truncate sentences to this many tokens (default: the model's limit)")
    pooling: Literal["mean", "cls"] = setting("mean", "mean of token vectors (sentence-transformers) or the [CLS] vector")
    normalize: bool = setting(True, "scale embeddings to unit length, so dot product = cosine similarity")
    device: str = setting("cpu", "cpu, cuda, cuda:1, ... or auto (cuda when available)")
