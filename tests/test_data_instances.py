"""NSP instances: identical to the original create_pretraining_data algorithm; shard round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hanformer.data.instances import create_instances
from hanformer.data.shards import ShardSplit, ShardWriter


def synthetic_split(tmp_path, n_docs=40, seed=0, vocab=500):
    """Documents of 1-12 sentences of 1-40 tokens; returns (split, documents as token lists)."""
    rng = np.random.default_rng(seed)
    w = ShardWriter(tmp_path / "train", vocab)
    docs = []
    for _ in range(n_docs):
        sents = []
        for _ in range(int(rng.integers(1, 13))):
            ids = rng.integers(5, vocab, int(rng.integers(1, 41)))
            sents.append((ids, rng.random(len(ids)) < 0.4))
        w.add_document(sents)
        docs.append([s.tolist() for s, _ in sents])
    w.close()
    return ShardSplit(tmp_path / "train", w.dtype), docs


def reference_instances(all_documents, max_seq_length, short_seq_prob, rng):
    """Google's create_pretraining_data.py (create_training_instances for one dupe, without
    masking and without the final shuffle), transcribed; segments as token lists."""
    all_documents = [d for d in all_documents if d]
    rng.shuffle(all_documents)
    instances = []
    for document_index in range(len(all_documents)):
        document = all_documents[document_index]
        max_num_tokens = max_seq_length - 3
        target_seq_length = max_num_tokens
        if rng.random() < short_seq_prob:
            target_seq_length = rng.randint(2, max_num_tokens)
        current_chunk, current_length, i = [], 0, 0
        while i < len(document):
            segment = document[i]
            current_chunk.append(segment)
            current_length += len(segment)
            if i == len(document) - 1 or current_length >= target_seq_length:
                if current_chunk:
                    a_end = 1
                    if len(current_chunk) >= 2:
                        a_end = rng.randint(1, len(current_chunk) - 1)
                    tokens_a = [t for c in current_chunk[:a_end] for t in c]
                    tokens_b = []
                    if len(current_chunk) == 1 or rng.random() < 0.5:
                        is_random_next = True
                        target_b_length = target_seq_length - len(tokens_a)
                        for _ in range(10):
                            random_document_index = rng.randint(0, len(all_documents) - 1)
                            if random_document_index != document_index:
                                break
                        random_document = all_documents[random_document_index]
                        random_start = rng.randint(0, len(random_document) - 1)
                        for j in range(random_start, len(random_document)):
                            tokens_b.extend(random_document[j])
                            if len(tokens_b) >= target_b_length:
                                break
                        i -= len(current_chunk) - a_end
                    else:
                        is_random_next = False
                        for j in range(a_end, len(current_chunk)):
                            tokens_b.extend(current_chunk[j])
                    while len(tokens_a) + len(tokens_b) > max_num_tokens:
                        trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
                        if rng.random() < 0.5:
                            del trunc[0]
                        else:
                            trunc.pop()
                    instances.append((tokens_a, tokens_b, int(is_random_next)))
                current_chunk, current_length = [], 0
            i += 1
    return instances


@pytest.mark.parametrize("seq_len,short", [(64, 0.1), (32, 0.5), (128, 0.0)])
def test_instances_equal_original_algorithm(tmp_path, seq_len, short):
    split, docs = synthetic_split(tmp_path)
    ours = create_instances(split, seq_len, short, seed=7, epoch=3)
    ref = reference_instances(docs, seq_len, short, random.Random("7-3"))
    tokens = np.asarray(split.tokens)
    assert len(ours) == len(ref) > 20
    for (a0, a1, b0, b1, r), (ta, tb, rr) in zip(ours.tolist(), ref, strict=True):
        assert tokens[a0:a1].tolist() == ta
        assert tokens[b0:b1].tolist() == tb
        assert r == rr


def test_instance_properties(tmp_path):
    split, _ = synthetic_split(tmp_path, n_docs=200, seed=1)
    inst = create_instances(split, 64, 0.1, seed=0)
    lengths = (inst[:, 1] - inst[:, 0]) + (inst[:, 3] - inst[:, 2])
    assert lengths.max() <= 61 and (inst[:, 1] > inst[:, 0]).all() and (inst[:, 3] > inst[:, 2]).all()
    doc_of_token = np.repeat(np.arange(split.n_documents),
                             np.diff(np.asarray(split.sentences)[np.asarray(split.documents)]))
    # A never crosses a document; an "is next" B continues A in the same document.
    assert (doc_of_token[inst[:, 0]] == doc_of_token[inst[:, 1] - 1]).all()
    nxt = inst[inst[:, 4] == 0]
    assert (doc_of_token[nxt[:, 2]] == doc_of_token[nxt[:, 0]]).all() and (nxt[:, 2] >= nxt[:, 1]).all()
    # About half random (more, since single-sentence chunks are always random), as in BERT.
    assert 0.45 < inst[:, 4].mean() < 0.75
    # Epochs differ, the same epoch repeats exactly.
    assert np.array_equal(inst, create_instances(split, 64, 0.1, seed=0))
    assert not np.array_equal(inst, create_instances(split, 64, 0.1, seed=0, epoch=1))
    # Short-sequence probability makes inputs shorter.
    long_mean = lengths.mean()
    short = create_instances(split, 64, 1.0, seed=0)
    assert ((short[:, 1] - short[:, 0]) + (short[:, 3] - short[:, 2])).mean() < 0.9 * long_mean


def test_shard_round_trip(tmp_path):
    split, docs = synthetic_split(tmp_path, n_docs=30, seed=2, vocab=70000)  # > 65536: uint32
    assert split.tokens.dtype == np.uint32
    assert split.n_documents == 30
    assert split.n_sentences == sum(len(d) for d in docs)
    for d, doc in enumerate(docs):
        sents = [split.sentence(s).tolist() for s in split.document_sentences(d)]
        assert sents == doc
        assert split.document_tokens(d).tolist() == [t for s in doc for t in s]
    small, _ = synthetic_split(tmp_path / "small", n_docs=3, vocab=30000)
    assert small.tokens.dtype == np.uint16
