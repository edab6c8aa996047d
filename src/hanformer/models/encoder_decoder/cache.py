"""The decoder's cache for incremental decoding: self-attention keys/values and cross-attention ones.

Self-attention grows by one position per generated token (a `KVCache`, preallocated when the
length is known). Cross-attention keys/values are projections of the encoder output, which does
not change while a translation is generated: they are computed at the first step and reused.
"""

from __future__ import annotations

from torch import Tensor

from hanformer.models.common.layers import KVCache


class Seq2SeqCache:
    """What the decoder carries from one decoding step to the next."""

    def __init__(self, self_attention: KVCache | None = None) -> None:
        self.self_attention = self_attention if self_attention is not None else KVCache()
        # One (keys, values) pair per decoder layer, each (rows, heads, source, head_dim).
        self.cross: list[tuple[Tensor, Tensor]] = []

    def __len__(self) -> int:
        """Number of target positions cached."""
        return len(self.self_attention)

    def reorder(self, beam_indices: Tensor) -> None:
        """Keep the rows `beam_indices` of the self-attention cache (beam search picks survivors).

        Beam search only moves rows among the copies of one source, whose cross-attention
        keys/values are equal, so those stay where they are: no copying of the source side.
        """
        self.self_attention.reorder(beam_indices)

    def select_rows(self, rows: Tensor) -> None:
        """Keep only the batch rows `rows`, on both sides (sources whose search has ended leave)."""
        self.self_attention.select_rows(rows)
        self.cross = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.cross]
