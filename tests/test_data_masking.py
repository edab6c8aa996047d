"""Masking statistics on a large sample: 15%, 80/10/10, never specials, whole-word groups."""

from __future__ import annotations

import numpy as np
import pytest

from hanformer.data.masking import IGNORE_INDEX, Masker, MaskingSpec

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 1000


def sample_batch(rng, rows=4000, width=64):
    """[CLS] A [SEP] B [SEP] [PAD]... with random lengths and random word starts."""
    ids = np.full((rows, width), PAD)
    words = rng.random((rows, width)) < 0.4
    for r in range(rows):
        la, lb = rng.integers(1, 30, 2)
        ids[r, 0] = CLS
        ids[r, 1:1 + la] = rng.integers(5, VOCAB, la)
        ids[r, 1 + la] = SEP
        ids[r, 2 + la:2 + la + lb] = rng.integers(5, VOCAB, lb)
        ids[r, 2 + la + lb] = SEP
        if r % 50 == 0:
            ids[r, 2] = UNK
    return ids, words


def make(**kw):
    return Masker(MaskingSpec(**kw), VOCAB, MASK, [PAD, UNK, CLS, SEP, MASK])


def test_masking_statistics():
    rng = np.random.default_rng(0)
    ids, words = sample_batch(rng)
    masked, labels = make()(ids, np.random.default_rng(1), words)
    special = np.isin(ids, [PAD, UNK, CLS, SEP, MASK])
    chosen = labels != IGNORE_INDEX
    # Never a special token; labels hold the original ids; unchosen positions are untouched.
    assert not (chosen & special).any()
    assert (labels[chosen] == ids[chosen]).all()
    assert (masked[~chosen] == ids[~chosen]).all()
    # Exactly round(15%) of the maskable tokens per sequence (at least one).
    maskable = (~special).sum(1)
    expected = np.maximum(1, np.round(maskable * 0.15).astype(int))
    assert (chosen.sum(1) == expected).all()
    assert chosen.sum() / maskable.sum() == pytest.approx(0.15, abs=0.01)
    # 80% [MASK], 10% random, 10% unchanged (n is ~60,000, so 1% is > 8 standard deviations).
    out = masked[chosen]
    n = chosen.sum()
    assert (out == MASK).sum() / n == pytest.approx(0.8, abs=0.01)
    assert (out == labels[chosen]).sum() / n == pytest.approx(0.1 + 0.1 / VOCAB, abs=0.01)
    replaced = (out != MASK) & (out != labels[chosen])
    assert replaced.sum() / n == pytest.approx(0.1, abs=0.01)
    # Random replacements are ordinary tokens, spread over the vocabulary.
    assert not np.isin(out[replaced], [PAD, UNK, CLS, SEP, MASK]).any()
    assert len(np.unique(out[replaced])) > 0.75 * (VOCAB - 5)  # ~1,800 draws over 995 ids


def test_masking_is_deterministic_per_generator_and_caps():
    rng = np.random.default_rng(0)
    ids, words = sample_batch(rng, rows=50)
    a = make()(ids, np.random.default_rng(5), words)
    b = make()(ids, np.random.default_rng(5), words)
    c = make()(ids, np.random.default_rng(6), words)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    _, labels = make(max_predictions=3, mask_prob=0.5)(ids, np.random.default_rng(0), words)
    assert ((labels != IGNORE_INDEX).sum(1) <= 3).all()


def test_whole_word_masking_takes_whole_words():
    rng = np.random.default_rng(3)
    ids, words = sample_batch(rng)
    masked, labels = make(whole_word=True)(ids, np.random.default_rng(4), words)
    special = np.isin(ids, [PAD, UNK, CLS, SEP, MASK])
    chosen = labels != IGNORE_INDEX
    assert not (chosen & special).any()
    maskable = (~special).sum(1)
    budget = np.maximum(1, np.round(maskable * 0.15).astype(int))
    assert (chosen.sum(1) <= budget).all()
    # Greedy filling gets close to 15% overall even though words have several pieces.
    assert chosen.sum() / maskable.sum() == pytest.approx(0.15, abs=0.02)
    multi_piece_masked = 0
    for r in range(len(ids)):
        cand = np.flatnonzero(~special[r])
        starts = words[r, cand].copy()
        starts[0] = True
        starts[1:] |= np.diff(cand) != 1
        group = np.cumsum(starts)
        for g in np.unique(group):
            state = chosen[r, cand[group == g]]
            assert state.all() or not state.any(), f"row {r}: word split by masking"
            multi_piece_masked += int(state.all() and len(state) > 1)
    assert multi_piece_masked > 1000
    out = masked[chosen]
    assert (out == MASK).mean() == pytest.approx(0.8, abs=0.015)
