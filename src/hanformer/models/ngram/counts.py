"""Counting n-grams with numpy: sorted integer keys, no Python object per n-gram.

An n-gram table of order k holds the distinct k-grams as sorted int64 keys

    key = row of the first k-1 words in the order-(k-1) table * vocab_size + id of the last word

(order 1: the word id itself, every vocabulary word present, so a unigram's row is its id).
Keys of any order therefore fit in 64 bits whatever the vocabulary size, a table's rows are
grouped by context (the extensions of a context are one contiguous slice), and finding a k-gram
is one binary search per order. Counting walks the token stream in chunks: each chunk's keys are
counted with `np.unique`, the per-chunk counts are merged, and each position then learns the row
of the k-gram ending there, which makes the keys of order k+1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hanformer.models.ngram.vocab import BOS_ID

CHUNK = 1 << 22  # positions per np.unique call: bounded temporary memory on any corpus


@dataclass
class NgramTable:
    """The distinct n-grams of one order: sorted `keys` and, for counted tables, their `counts`."""

    order: int
    keys: np.ndarray  # int64, sorted, unique
    counts: np.ndarray  # int64, aligned with keys

    def __len__(self) -> int:
        return len(self.keys)

    def contexts(self, vocab_size: int) -> np.ndarray:
        """Row of each n-gram's first order-1 words in the table below (0 for unigrams)."""
        return self.keys // vocab_size if self.order > 1 else np.zeros(len(self.keys), np.int64)

    def last_words(self, vocab_size: int) -> np.ndarray:
        return self.keys % vocab_size if self.order > 1 else self.keys


def find_rows(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row of each `query` key in the sorted `keys`, -1 where absent (negative queries never match)."""
    query = np.asarray(query, dtype=np.int64)
    if len(keys) == 0:
        return np.full(query.shape, -1, np.int64)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[pos] == query, pos, -1)


def extend_keys(context_rows: np.ndarray, words: np.ndarray, vocab_size: int) -> np.ndarray:
    """Keys of (context, word) pairs; -1 where the context is absent (-1)."""
    rows = np.asarray(context_rows, dtype=np.int64)
    return np.where(rows >= 0, rows * vocab_size + np.asarray(words, dtype=np.int64), -1)


def sentence_depth(ids: np.ndarray, cap: int) -> np.ndarray:
    """How many tokens of the same sentence precede each position, capped at `cap` (uint8):
    a k-gram ending at p lies inside one sentence exactly when depth[p] >= k - 1."""
    positions = np.arange(len(ids), dtype=np.int64)
    starts = np.maximum.accumulate(np.where(ids == BOS_ID, positions, 0))
    return np.minimum(positions - starts, cap).astype(np.uint8)


def count_ngrams(ids: np.ndarray, order: int, vocab_size: int) -> list[NgramTable]:
    """Tables of orders 1..`order` of the framed token stream `ids` (see corpus.frame)."""
    depth = sentence_depth(ids, order)
    unigrams = NgramTable(1, np.arange(vocab_size, dtype=np.int64),
                          np.bincount(ids, minlength=vocab_size).astype(np.int64))
    tables = [unigrams]
    rows = ids.astype(np.int64)  # row of the (k-1)-gram ending at each position
    for k in range(2, order + 1):
        table, rows = _count_next_order(ids, depth, rows, k, vocab_size)
        tables.append(table)
    return tables


def _count_next_order(ids: np.ndarray, depth: np.ndarray, prev_rows: np.ndarray, k: int,
                      vocab_size: int) -> tuple[NgramTable, np.ndarray]:
    """Count the k-grams, and return with them the row of the k-gram ending at each position."""
    keys_of = _chunk_keys(ids, depth, prev_rows, k, vocab_size)
    uniques, counts = [], []
    for start in range(1, len(ids), CHUNK):
        keys = keys_of(start)
        chunk_keys, chunk_counts = np.unique(keys[keys >= 0], return_counts=True)
        uniques.append(chunk_keys)
        counts.append(chunk_counts)
    table = _merge(k, uniques, counts)
    rows = np.full(len(ids), -1, dtype=np.int64 if len(table) >= 2**31 else np.int32)
    for start in range(1, len(ids), CHUNK):
        found = find_rows(table.keys, keys_of(start))
        rows[start:start + len(found)] = found
    return table, rows


def _chunk_keys(ids: np.ndarray, depth: np.ndarray, prev_rows: np.ndarray, k: int,
                vocab_size: int) -> Callable[[int], np.ndarray]:
    """The keys of the k-grams ending at positions start .. start+CHUNK (-1: none there)."""
    def keys_of(start: int) -> np.ndarray:
        stop = min(start + CHUNK, len(ids))
        keys = extend_keys(prev_rows[start - 1:stop - 1], ids[start:stop], vocab_size)
        keys[depth[start:stop] < k - 1] = -1  # would cross a sentence boundary
        return keys
    return keys_of


def _merge(k: int, uniques: list[np.ndarray], counts: list[np.ndarray]) -> NgramTable:
    if not uniques:
        return NgramTable(k, np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(uniques) == 1:
        return NgramTable(k, uniques[0].astype(np.int64), counts[0].astype(np.int64))
    keys, inverse = np.unique(np.concatenate(uniques), return_inverse=True)
    merged = np.zeros(len(keys), np.int64)
    np.add.at(merged, inverse, np.concatenate(counts))
    return NgramTable(k, keys, merged)


def suffix_rows(tables: list[NgramTable], vocab_size: int) -> list[np.ndarray]:
    """For each table, the row in the table below of each n-gram's last order-1 words (empty for
    unigrams). Counted tables always contain these suffixes."""
    out = [np.zeros(0, np.int64)]
    for index in range(1, len(tables)):
        table = tables[index]
        words = table.last_words(vocab_size)
        if index == 1:
            out.append(words.astype(np.int64))  # a unigram's row is its id
            continue
        context_suffix = out[index - 1][table.contexts(vocab_size)]
        out.append(find_rows(tables[index - 1].keys, extend_keys(context_suffix, words, vocab_size)))
    return out


def extension_range(keys: np.ndarray, context_row: int, vocab_size: int) -> tuple[int, int]:
    """[start, stop) rows, among the sorted `keys` of one order, of the extensions of one row
    of the order below: they are contiguous because keys sort by context first."""
    return (int(np.searchsorted(keys, context_row * vocab_size)),
            int(np.searchsorted(keys, (context_row + 1) * vocab_size)))
