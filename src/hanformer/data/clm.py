"""Causal-LM batches from the same token shards BERT trains on: contiguous packed sequences.

The split is read as one stream of documents, each followed by a separator token
(`doc₀ [SEP] doc₁ [SEP] doc₂ ...`), and cut into rows of exactly `seq_len` tokens. No padding,
no wasted positions: every token of the corpus is predicted once per epoch (except the first of
each row, which has no left context in it). The separator teaches the model where a text
ends, and serves as the start token when generating from scratch.

Rows are shuffled per epoch with a seeded permutation, so micro-batch `index` of `epoch` is a
pure function of (seed, epoch, index): this plugs into `BatchStream` (prefetching, DDP rank
striding, exact resume) like the masked-LM builder does.
"""

from __future__ import annotations

import numpy as np
import torch

from hanformer.data.shards import ShardSplit


class PackedCLMBatches:
    """`{"input_ids", "labels"}` micro-batches of (batch_size, seq_len) packed tokens.

    `labels` equal `input_ids`; the model shifts them (position t predicts token t + 1), as
    transformers' causal LMs do.
    """

    def __init__(self, split: ShardSplit, *, seq_len: int, batch_size: int, separator_id: int, seed: int,
                 shuffle: bool = True, name: str = "train") -> None:
        self.split = split
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.separator_id = separator_id
        self.seed = seed
        self.shuffle = shuffle
        self.name = name
        # Documents are contiguous in `tokens`; document d ends at token end[d]. In the packed
        # stream d separators precede it, so its tokens sit d places later and its separator is
        # at end[d] + d.
        doc_end = np.asarray(split.sentences[np.asarray(split.documents[1:])], dtype=np.int64)
        self.stream_end = doc_end + np.arange(1, len(doc_end) + 1)  # exclusive, separator included
        self.stream_length = int(self.stream_end[-1]) if len(self.stream_end) else 0
        self.rows = self.stream_length // seq_len

    def num_batches(self, epoch: int) -> int:
        return self.rows // self.batch_size

    def row_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.rows)
        return np.random.default_rng([self.seed, epoch]).permutation(self.rows)

    def stream(self, positions: np.ndarray) -> np.ndarray:
        """Token ids at positions of the packed stream (separators included)."""
        doc = np.searchsorted(self.stream_end, positions, side="right")
        inside = positions != self.stream_end[doc] - 1
        ids = np.full(positions.shape, self.separator_id, dtype=np.int64)
        ids[inside] = self.split.tokens[(positions - doc)[inside]]
        return ids

    def build(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        rows = self.row_order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        positions = rows[:, None] * self.seq_len + np.arange(self.seq_len)[None, :]
        ids = torch.from_numpy(self.stream(positions))
        return {"input_ids": ids, "labels": ids}
