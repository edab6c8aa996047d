"""What a recurrent decoder carries from one decoding step to the next.

Unlike a Transformer's key/value cache it does not grow: the decoder's recurrent state after the
tokens fed so far, plus what depends on the source only (the attention keys, or with no
attention the encoder's final vectors), computed at the first step and reused.
"""

from __future__ import annotations

from torch import Tensor

from hanformer.models.rnn.state import RNNState


class RNNSeq2SeqCache:
    def __init__(self, state: RNNState, source_keys: Tensor | None, summary: Tensor) -> None:
        self.state = state
        """The decoder's state, (layers, rows, hidden) per tensor."""
        self.source_keys = source_keys
        """(rows, source, width): the attention keys of the source (None without attention)."""
        self.summary = summary
        """(rows, memory): the encoder's final vectors (the context when there is no attention)."""
        self.length = 0
        """Target positions fed so far."""

    def __len__(self) -> int:
        return self.length

    def reorder(self, beam_indices: Tensor) -> None:
        """Keep the rows `beam_indices` of the state (beam search picks survivors).

        Beam search only moves rows among the copies of one source, whose keys and summary are
        equal, so those stay where they are.
        """
        self.state.reorder(beam_indices)

    def select_rows(self, rows: Tensor) -> None:
        """Keep only the batch rows `rows`, state and source side (sources whose search has ended leave)."""
        self.state.reorder(rows)
        if self.source_keys is not None:
            self.source_keys = self.source_keys.index_select(0, rows)
        self.summary = self.summary.index_select(0, rows)
