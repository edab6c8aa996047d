"""Diversity and repetition of generated text, the two things decoding strategies trade off.

* distinct-n (Li et al., 2016): distinct n-grams / all n-grams over a set of generations.
  Low = the generations say the same things (greedy and beam search tend there).
* repeated n-gram rate: share of a generation's n-grams that already occurred earlier in the
  same generation. High = the text loops ("서울은 서울은 서울은 ..."), the classic failure of
  maximisation-based decoding (Holtzman et al., 2020).

Both work on token sequences (ids or strings): count word pieces to compare strategies under one
tokenizer.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def ngrams(tokens: Sequence[Hashable], n: int) -> list[tuple]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(generations: Sequence[Sequence[Hashable]], n: int) -> float:
    """Distinct n-grams / total n-grams, pooled over all generations (0 when there are none)."""
    grams = [g for tokens in generations for g in ngrams(tokens, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_ngram_rate(generations: Sequence[Sequence[Hashable]], n: int) -> float:
    """Share of n-grams that repeat an earlier n-gram of the same generation, pooled."""
    repeats = total = 0
    for tokens in generations:
        seen: set[tuple] = set()
        for g in ngrams(tokens, n):
            repeats += g in seen
            seen.add(g)
            total += 1
    return repeats / total if total else 0.0
