"""The two attention scores of the recurrent encoder–decoders, over a masked source.

Both split into a part that depends on the source only (`keys`, computed once per source and
kept in the decoding cache) and a part computed for every decoder query:

    additive (Bahdanau et al., 2015)        score(s, h_j) = vᵀ tanh(W s + U h_j)     keys: U h_j
    multiplicative (Luong et al., 2015)     score(s, h_j) = sᵀ W h_j ("general")     keys: W h_j

The weights are a softmax over the real source positions only: padding gets exactly 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def masked_softmax(scores: Tensor, source_mask: Tensor) -> Tensor:
    """scores (batch, queries, source), source_mask (batch, source) 1 = real -> weights summing to
    1 over the real positions (every source has at least one: its EOS)."""
    hidden = (source_mask == 0)[:, None, :]
    return torch.softmax(scores.float().masked_fill(hidden, float("-inf")), dim=-1).to(scores.dtype)


class AdditiveAttention(nn.Module):
    def __init__(self, query_size: int, memory_size: int, attention_size: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_size, attention_size)
        self.key = nn.Linear(memory_size, attention_size, bias=False)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """(batch, source, memory) -> (batch, source, attention)."""
        out: Tensor = self.key(memory)
        return out

    def forward(self, queries: Tensor, keys: Tensor, source_mask: Tensor) -> Tensor:
        """queries (batch, q, query_size) -> weights (batch, q, source)."""
        scores = self.score(torch.tanh(self.query(queries)[:, :, None, :] + keys[:, None, :, :])).squeeze(-1)
        return masked_softmax(scores, source_mask)


class MultiplicativeAttention(nn.Module):
    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """(batch, source, memory) -> (batch, source, query_size)."""
        out: Tensor = self.key(memory)
        return out

    def forward(self, queries: Tensor, keys: Tensor, source_mask: Tensor) -> Tensor:
        """queries (batch, q, query_size) -> weights (batch, q, source)."""
        return masked_softmax(queries @ keys.transpose(1, 2), source_mask)
