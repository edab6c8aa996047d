"""Settings of the attention views (kept free of torch so the CLI starts fast)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from hanformer.utils.config import setting

Mode = Literal["heads", "mean", "rollout"]
View = Literal["head", "model"]


@dataclasses.dataclass
class AttentionViewConfig:
    """What `hanformer attention` draws."""

    text: str = setting("", "the sentence to look at")
    pair: str | None = setting(None, "a second sentence (segment B), for models trained on pairs")
    layer: int | None = setting(None, "layer the head view opens on, as an index from 0 (the views show it as "
                                      "layer 1); default: the last; -1 also means the last")
    heads: list[int] = setting([], "heads shown at first, as indices from 0: 0,3,5 are heads 1, 4 and 6 "
                                   "in the views (default: all)")
    mode: Mode = setting("heads", "what the head view shows first: the selected heads, their mean, or the rollout")
    view: View = setting("head", "the view shown first: head view or model view")
    max_length: int = setting(128, "longest input accepted, in tokens (the file grows with its square)")
    title: str | None = setting(None, "page title (default: 'Attention')")
