"""Next-sentence-prediction training instances, as the original `create_pretraining_data.py`.

For every document (in shuffled order) sentences are gathered into a chunk until it reaches a
target length (`seq_len - 3`, or with probability `short_seq_prob` a random length in
[2, seq_len - 3] so the model also sees short inputs). Segment A is a random-length prefix of
the chunk; segment B is the rest of the chunk ("is next", label 0), or - with probability 1/2,
and always when the chunk has one sentence - text from a random other document starting at a
random sentence ("random next", label 1; the unused sentences of the chunk go back to be used
again). The pair is then truncated to fit, one token at a time from the longer segment, at the
front or the back at random.

Because a document's sentences are contiguous in the shard, A and B are each one slice of the
token array: an instance is five integers (a_start, a_end, b_start, b_end, is_random_next), so a
whole epoch of instances costs 40 bytes each and is regenerated (fresh pairs and truncation)
from (seed, epoch) on demand - the original's `dupe_factor` is simply more epochs.
"""

from __future__ import annotations

import random

import numpy as np

from hanformer.data.shards import ShardSplit

A_START, A_END, B_START, B_END, IS_RANDOM = range(5)


def create_instances(split: ShardSplit, seq_len: int, short_seq_prob: float, seed: int,
                     epoch: int = 0) -> np.ndarray:
    """All NSP instances of one epoch: int64 array (n, 5); see the module docstring."""
    rng = random.Random(f"{seed}-{epoch}")
    max_num_tokens = seq_len - 3  # [CLS] A [SEP] B [SEP]
    sent_off = split.sentences.tolist() if split.n_sentences < 50_000_000 else split.sentences
    doc_off = split.documents.tolist()
    n_docs = len(doc_off) - 1
    order = list(range(n_docs))
    rng.shuffle(order)
    out: list[tuple[int, int, int, int, int]] = []
    for pos, d in enumerate(order):
        s_first, s_last = doc_off[d], doc_off[d + 1]
        n_sent = s_last - s_first
        if n_sent == 0:
            continue
        target = max_num_tokens
        if rng.random() < short_seq_prob:
            target = rng.randint(2, max_num_tokens)
        chunk_start = s_first  # the chunk is sentences [chunk_start, i]
        current_length = 0
        i = s_first
        while i < s_last:
            current_length += sent_off[i + 1] - sent_off[i]
            if i == s_last - 1 or current_length >= target:
                n_chunk = i + 1 - chunk_start
                a_end_sent = chunk_start + 1
                if n_chunk >= 2:
                    a_end_sent = chunk_start + rng.randint(1, n_chunk - 1)
                a0, a1 = sent_off[chunk_start], sent_off[a_end_sent]
                if n_chunk == 1 or rng.random() < 0.5:
                    is_random = 1
                    target_b = target - (a1 - a0)
                    for _ in range(10):  # (indices into the shuffled order, as the original)
                        r_pos = rng.randint(0, n_docs - 1)
                        if r_pos != pos:
                            break
                    rd = order[r_pos]
                    r_first, r_last = doc_off[rd], doc_off[rd + 1]
                    r_start = rng.randint(r_first, r_last - 1)
                    b0 = sent_off[r_start]
                    b1 = b0
                    for j in range(r_start, r_last):
                        b1 = sent_off[j + 1]
                        if b1 - b0 >= target_b:
                            break
                    # Put the unused sentences back: they start the next chunk.
                    i -= i + 1 - a_end_sent
                else:
                    is_random = 0
                    b0, b1 = a1, sent_off[i + 1]
                a0, a1, b0, b1 = truncate_pair(a0, a1, b0, b1, max_num_tokens, rng)
                if a1 > a0 and b1 > b0:
                    out.append((a0, a1, b0, b1, is_random))
                chunk_start = i + 1
                current_length = 0
            i += 1
    return np.asarray(out, dtype=np.int64).reshape(-1, 5)


def truncate_pair(a0: int, a1: int, b0: int, b1: int, max_num_tokens: int,
                  rng: random.Random) -> tuple[int, int, int, int]:
    """Cut the longer segment one token at a time, front or back at random, until both fit."""
    while (a1 - a0) + (b1 - b0) > max_num_tokens:
        if (a1 - a0) > (b1 - b0):
            if rng.random() < 0.5:
                a0 += 1
            else:
                a1 -= 1
        else:
            if rng.random() < 0.5:
                b0 += 1
            else:
                b1 -= 1
    return a0, a1, b0, b1
