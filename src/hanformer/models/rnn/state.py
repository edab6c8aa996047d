"""The recurrent state an RNN language model carries from one window of text to the next.

It is also the model's cache for `hanformer.generation`: the decoding loops pass it back in as
`past_key_values` and beam search calls `reorder(rows)` on it, as on a Transformer's key/value
cache. Unlike that cache it does not grow: one state per layer, whatever the text's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class RNNState:
    """(h, c) for an LSTM, (h,) for a GRU; each tensor is (layers, batch, hidden)."""

    tensors: tuple[Tensor, ...]

    @classmethod
    def from_torch(cls, state: Tensor | tuple[Tensor, ...]) -> RNNState:
        return cls(tuple(state) if isinstance(state, tuple) else (state,))

    def as_torch(self) -> Tensor | tuple[Tensor, Tensor]:
        """What `nn.LSTM` (a tuple) or `nn.GRU` (one tensor) takes as its initial state."""
        if len(self.tensors) == 1:
            return self.tensors[0]
        h, c = self.tensors
        return h, c

    @property
    def batch_size(self) -> int:
        return int(self.tensors[0].shape[1])

    def detach(self) -> RNNState:
        """The same values cut from the graph: truncated backpropagation stops here."""
        return RNNState(tuple(t.detach() for t in self.tensors))

    def to(self, device: torch.device | str) -> RNNState:
        return RNNState(tuple(t.to(device) for t in self.tensors))

    def reorder(self, rows: Tensor) -> None:
        """Keep batch rows `rows` in that order (beam search: the surviving beams)."""
        self.tensors = tuple(t.index_select(1, rows.to(t.device)) for t in self.tensors)
