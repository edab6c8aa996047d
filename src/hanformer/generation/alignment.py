"""Where a translation looked: the cross-attention of an encoder-decoder over its source.

The model re-reads its own translation with teacher forcing (`output_attentions=True`): row i is
the attention while it wrote output token i, the columns are the source tokens (EOS included).
A Transformer returns one (batch, heads, target, source) tensor per decoder layer, of which one
layer is averaged over its heads; a recurrent model with attention returns one (batch, target,
source) tensor; one without attention returns none. The report's alignment pictures and the
web app's heatmap both come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass
class CrossAttentionMap:
    weights: Tensor
    """(output tokens, source tokens), float32, each row summing to 1 over the source."""
    layer: int | None
    """The decoder layer shown (from 0); None for a recurrent model's single attention."""
    layers: int | None
    heads: int | None
    """How many heads were averaged (None for a recurrent model)."""


def cross_attention_map(model: Any, source_ids: list[int], output_ids: list[int],
                        layer: int = -1) -> CrossAttentionMap | None:
    """The cross-attention while `model` writes `output_ids` (EOS included) for `source_ids`:
    decoder layer `layer` (-1: the last) averaged over its heads. None when the model has no
    attention or either side is empty."""
    if not source_ids or not output_ids:
        return None
    device = model.device
    input_ids = torch.tensor([source_ids], device=device)
    decoder_input_ids = torch.tensor([[model.config.start_token_id, *output_ids[:-1]]], device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                        decoder_input_ids=decoder_input_ids, output_attentions=True)
    finally:
        model.train(was_training)
    weights = out.cross_attentions
    if weights is None or (isinstance(weights, tuple) and not weights):
        return None
    if isinstance(weights, tuple):  # a Transformer: one tensor per decoder layer
        index = max(0, min(len(weights) - 1, layer if layer >= 0 else len(weights) + layer))
        chosen = weights[index][0].float()  # (heads, output, source)
        return CrossAttentionMap(chosen.mean(dim=0), index, len(weights), int(chosen.shape[0]))
    return CrossAttentionMap(weights[0].float(), None, None, None)
