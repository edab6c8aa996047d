"""Skip-gram vectors of the vocabulary's pieces as the starting token embeddings.

A few minutes of masked-LM on a CPU teach a small encoder little about which pieces mean alike;
word2vec's skip-gram (Mikolov et al., 2013) learns exactly that from the same text in seconds,
because it does nothing else. Starting the embedding matrix there gives fine-tuning a space in
which a sentiment word the labeled examples never show already sits next to the ones they do.

The vectors are trained on the training split of the shards, one document per sequence of ids,
by gensim's Word2Vec on one worker (so a seed gives the same vectors on every run), then scaled
to the spread of the model's own initialisation so the first steps of training see the scale
they expect. Pieces the text never shows keep their random rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from hanformer.data.shards import ShardSplit
from hanformer.errors import HanformerError


@dataclasses.dataclass(frozen=True)
class StaticVectors:
    """One vector per vocabulary id, and which ids the text showed often enough to learn one."""

    vectors: np.ndarray  # (vocab_size, dim), float32
    learned: np.ndarray  # (vocab_size,), bool


class _Documents:
    """The split's documents as lists of ids, re-readable: Word2Vec passes over them once per epoch."""

    def __init__(self, split: ShardSplit) -> None:
        self.split = split

    def __iter__(self) -> Iterator[list[int]]:
        for d in range(self.split.n_documents):
            yield self.split.document_tokens(d).tolist()


def skipgram_vectors(split: ShardSplit, vocab_size: int, dim: int, *, epochs: int = 5, window: int = 5,
                     seed: int = 42) -> StaticVectors:
    """Train skip-gram with negative sampling on `split` and return a vector for every id."""
    try:
        from gensim.models import Word2Vec
    except ImportError:
        raise HanformerError("static_embeddings = 'skipgram' needs gensim: pip install 'hanformer[static]'") from None
    # Integer ids hash the same in every process, so with one worker the vectors are repeatable.
    model = Word2Vec(_Documents(split), vector_size=dim, window=window, min_count=1, sg=1, negative=5,
                     epochs=epochs, workers=1, seed=seed)
    vectors = np.zeros((vocab_size, dim), dtype=np.float32)
    learned = np.zeros(vocab_size, dtype=bool)
    for token_id, row in model.wv.key_to_index.items():
        vectors[int(token_id)] = model.wv.vectors[row]
        learned[int(token_id)] = True
    return StaticVectors(vectors, learned)


@torch.no_grad()
def load_static_vectors(embedding: nn.Embedding, static: StaticVectors) -> int:
    """Overwrite the learned rows of `embedding`, centred and scaled to the matrix's current spread;
    returns how many rows were set."""
    if static.vectors.shape != tuple(embedding.weight.shape):
        raise HanformerError(f"static vectors of shape {static.vectors.shape} do not fit the embedding matrix "
                             f"{tuple(embedding.weight.shape)}")
    rows = torch.from_numpy(static.learned)
    if not bool(rows.any()):
        return 0
    learned = torch.from_numpy(static.vectors)[rows]
    learned = learned - learned.mean(0)
    scale = embedding.weight.std() / learned.std().clamp_min(1e-12)
    embedding.weight[rows] = (learned * scale).to(embedding.weight.dtype)
    if embedding.padding_idx is not None:
        embedding.weight[embedding.padding_idx].zero_()
    return int(rows.sum())
