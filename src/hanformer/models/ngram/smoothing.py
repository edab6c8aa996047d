"""Estimators: counted n-gram tables -> log10 probabilities and backoff weights (the ARPA form).

Every estimator returns, for each order, the log10 probability of each listed n-gram and the
log10 backoff weight of each n-gram as a context, so one scoring routine (and any ARPA reader)
serves all of them: p(w | h) = P(h w) when `h w` is listed, else b(h) * p(w | h minus its first
word), with b = 1 for a context that is not listed.

* `kn`: interpolated modified Kneser-Ney (Chen & Goodman 1998) as KenLM's lmplz builds it. The
  highest order uses raw counts, lower orders continuation counts N1+(. w...) except n-grams that
  start with <s>, which keep their raw counts (nothing can precede them). Each order has three
  discounts D1, D2, D3+ from the count-of-counts n1..n4 of those adjusted counts:
  Y = n1 / (n1 + 2 n2), Dj = j - (j + 1) Y n(j+1) / nj. Unigrams are interpolated with the
  uniform distribution over the vocabulary (`<unk>` included, `<s>` left out), which gives
  `<unk>` its probability.
* `absolute`: interpolated absolute discounting (Ney, Essen & Kneser 1994): raw counts at every
  order and one discount per order, by default n1 / (n1 + 2 n2).
* `addk`: add-k (Lidstone; k = 1 is Laplace) for the n-grams seen: (c(h w) + k) / (c(h) + k |V|).
  Order 1 is exactly that over the whole vocabulary. In a seen context the mass add-k leaves to
  the unseen words, k (|V| - seen(h)) / (c(h) + k |V|), is shared out in proportion to the lower
  order (a backoff model), so the model stays normalized and an ARPA file can hold it exactly;
  unseen contexts back off with weight 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hanformer.models.ngram.counts import NgramTable, suffix_rows
from hanformer.models.ngram.vocab import BOS_ID

ARPA_ZERO = -99.0  # log10 "probability" ARPA files give <s>, which is never predicted
DEFAULT_FALLBACK = (0.5, 1.0, 1.5)  # KenLM's --discount_fallback


@dataclass
class Estimate:
    """log10 probabilities and backoffs per table row; the discounts each order used."""

    logprob: list[np.ndarray]
    backoff: list[np.ndarray]
    discounts: list[list[float]] = field(default_factory=list)
    fallback_orders: list[int] = field(default_factory=list)  # orders whose counts gave no valid discounts


def estimate(tables: list[NgramTable], vocab_size: int, smoothing: str, *, k: float = 1.0,
             discount: float | None = None,
             fallback: tuple[float, float, float] = DEFAULT_FALLBACK) -> Estimate:
    if smoothing == "kn":
        return kneser_ney(tables, vocab_size, fallback)
    if smoothing == "absolute":
        return absolute_discounting(tables, vocab_size, discount, fallback[0])
    if smoothing == "addk":
        return add_k(tables, vocab_size, k)
    raise ValueError(f"unknown smoothing {smoothing!r}")


# ---------------------------------------------------------------------------------- Kneser-Ney
def kneser_ney(tables: list[NgramTable], vocab_size: int,
               fallback: tuple[float, float, float] = DEFAULT_FALLBACK) -> Estimate:
    suffixes = suffix_rows(tables, vocab_size)
    adjusted = adjusted_counts(tables, suffixes, vocab_size)
    discounts, fallen = [], []
    for index, counts in enumerate(adjusted):
        found = modified_kn_discounts(_count_of_counts(counts, index))
        if found is None:
            found = list(fallback)
            fallen.append(index + 1)
        discounts.append(found)
    per_row = [_discount_per_row(a, d) for a, d in zip(adjusted, discounts, strict=True)]
    logprob, backoff = _interpolate(tables, adjusted, per_row, suffixes, vocab_size)
    return Estimate(logprob, backoff, discounts, fallen)


def adjusted_counts(tables: list[NgramTable], suffixes: list[np.ndarray], vocab_size: int) -> list[np.ndarray]:
    """Raw counts at the highest order; below it, how many distinct words precede each n-gram,
    except for n-grams starting with <s>, which keep their raw counts."""
    out = [t.counts.copy() for t in tables]
    starts_bos = _starts_with_bos(tables, vocab_size)
    for index in range(len(tables) - 1):
        continuation = np.bincount(suffixes[index + 1], minlength=len(tables[index])).astype(np.int64)
        out[index] = np.where(starts_bos[index], tables[index].counts, continuation)
    return out


def _starts_with_bos(tables: list[NgramTable], vocab_size: int) -> list[np.ndarray]:
    first = [tables[0].keys]
    for table in tables[1:]:
        first.append(first[-1][table.contexts(vocab_size)])
    return [f == BOS_ID for f in first]


def _count_of_counts(counts: np.ndarray, index: int) -> np.ndarray:
    """n1..n4 of one order (the unigram <s> is no event and is left out)."""
    if index == 0:
        counts = np.delete(counts, BOS_ID)
    return np.bincount(np.minimum(counts, 5), minlength=6)[1:5]


def modified_kn_discounts(n: np.ndarray) -> list[float] | None:
    """Chen & Goodman's D1, D2, D3+ from count-of-counts n1..n4, or None when they are not all in
    (0, j] (too little data: a count-of-count is zero, or the estimate leaves its range)."""
    n1, n2, n3, n4 = (float(x) for x in n)
    if min(n1, n2, n3) == 0:
        return None
    y = n1 / (n1 + 2 * n2)
    found = [1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3]
    if any(not 0 < d <= j for j, d in enumerate(found, start=1)):
        return None
    return found


def _discount_per_row(counts: np.ndarray, discounts: list[float]) -> np.ndarray:
    """D1, D2 or D3+ by each n-gram's count (0 for a count of 0: nothing to take)."""
    return np.array([0.0, *discounts])[np.minimum(counts, 3)]


# ----------------------------------------------------------------------- absolute discounting
def absolute_discounting(tables: list[NgramTable], vocab_size: int, discount: float | None = None,
                         fallback: float = DEFAULT_FALLBACK[0]) -> Estimate:
    suffixes = suffix_rows(tables, vocab_size)
    adjusted = [t.counts for t in tables]
    discounts, fallen = [], []
    for index, counts in enumerate(adjusted):
        d = discount if discount is not None else ney_discount(_count_of_counts(counts, index))
        if d is None:
            d = fallback
            fallen.append(index + 1)
        discounts.append([d])
    per_row = [np.where(c > 0, d[0], 0.0) for c, d in zip(adjusted, discounts, strict=True)]
    logprob, backoff = _interpolate(tables, adjusted, per_row, suffixes, vocab_size)
    return Estimate(logprob, backoff, discounts, fallen)


def ney_discount(n: np.ndarray) -> float | None:
    """n1 / (n1 + 2 n2), the leaving-one-out estimate; None without singletons."""
    n1, n2 = float(n[0]), float(n[1])
    return n1 / (n1 + 2 * n2) if n1 > 0 else None


# --------------------------------------------------------------------- shared interpolation
def _interpolate(tables: list[NgramTable], counts: list[np.ndarray], discounts: list[np.ndarray],
                 suffixes: list[np.ndarray], vocab_size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """p(w|h) = (a(hw) - D) / a(h.) + gamma(h) p(w|h'), gamma(h) = sum of D over h's extensions
    / a(h.); unigrams interpolate with 1/|V|. gamma is h's backoff weight in the ARPA form."""
    logprob: list[np.ndarray] = []
    backoff: list[np.ndarray] = []
    uniform = 1.0 / (vocab_size - 1)  # over every word but <s>
    lower = np.zeros(0)
    for index, table in enumerate(tables):
        a = counts[index].astype(np.float64)
        d = discounts[index].astype(np.float64)
        if index == 0:
            a[BOS_ID] = d[BOS_ID] = 0.0  # <s> is never predicted
        contexts = table.contexts(vocab_size)
        width = len(tables[index - 1]) if index else 1
        total = np.bincount(contexts, weights=a, minlength=width)
        left = np.bincount(contexts, weights=d, minlength=width)
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma = np.where(total > 0, left / total, 1.0)
            below = np.full(len(table), uniform) if index == 0 else lower[suffixes[index]]
            p = (a - d) / total[contexts] + gamma[contexts] * below
        if index:
            backoff[index - 1] = np.log10(gamma)
        logprob.append(_log10_probability(p, index))
        backoff.append(np.zeros(len(table)))
        lower = p
    return logprob, backoff


def _log10_probability(p: np.ndarray, index: int) -> np.ndarray:
    with np.errstate(divide="ignore"):
        out = np.log10(p)
    if index == 0:
        out[BOS_ID] = ARPA_ZERO
    return out


# ------------------------------------------------------------------------------------ add-k
def add_k(tables: list[NgramTable], vocab_size: int, k: float) -> Estimate:
    suffixes = suffix_rows(tables, vocab_size)
    predictable = vocab_size - 1
    logprob: list[np.ndarray] = []
    backoff: list[np.ndarray] = []
    lower = np.zeros(0)
    for index, table in enumerate(tables):
        c = table.counts.astype(np.float64)
        if index == 0:
            c[BOS_ID] = 0.0
            p = (c + k) / (c.sum() + k * predictable)
            p[BOS_ID] = 0.0
        else:
            contexts = table.contexts(vocab_size)
            width = len(tables[index - 1])
            total = np.bincount(contexts, weights=c, minlength=width)
            seen = np.bincount(contexts, minlength=width)
            p = (c + k) / (total[contexts] + k * predictable)
            backoff[index - 1] = np.log10(_add_k_backoff(total, seen, contexts, lower[suffixes[index]], k, predictable))
        logprob.append(_log10_probability(p, index))
        backoff.append(np.zeros(len(table)))
        lower = p
    return Estimate(logprob, backoff, [[k]] * len(tables), [])


def _add_k_backoff(total: np.ndarray, seen: np.ndarray, contexts: np.ndarray, lower_seen: np.ndarray,
                   k: float, predictable: int) -> np.ndarray:
    """b(h) = add-k's mass of the words unseen after h / the lower order's mass of those words."""
    left = k * (predictable - seen) / (total + k * predictable)
    lower_left = 1.0 - np.bincount(contexts, weights=lower_seen, minlength=len(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where((seen > 0) & (seen < predictable), left / np.maximum(lower_left, 1e-300), 1.0)
    return weight
