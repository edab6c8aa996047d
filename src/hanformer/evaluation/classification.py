"""Sentence-level metrics: accuracy, macro-F1 (classification), Pearson and Spearman (regression).

Plain numpy so that scoring never needs scikit-learn or scipy; the tests check the values
against those libraries. Scores are fractions (accuracy 0.873, not 87.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _pair(
    gold: Sequence[Any] | np.ndarray, pred: Sequence[Any] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    g, p = np.asarray(list(gold)), np.asarray(list(pred))
    if g.shape != p.shape:
        raise ValueError(f"gold and predictions differ in length: {len(g)} vs {len(p)}")
    return g, p


def accuracy(gold: Sequence[Any], pred: Sequence[Any]) -> float:
    """Fraction of predictions equal to the gold label (0.0 for no examples)."""
    g, p = _pair(gold, pred)
    return float((g == p).mean()) if len(g) else 0.0


def macro_f1(gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any] | None = None) -> float:
    """Unweighted mean of per-class F1 over `labels` (default: every class seen in gold or pred).

    A class with no gold and no predicted examples scores 0, as scikit-learn's default does.
    """
    g, p = _pair(gold, pred)
    classes = list(labels) if labels is not None else sorted(set(g.tolist()) | set(p.tolist()))
    if not classes:
        return 0.0
    scores = []
    for c in classes:
        tp = int(((g == c) & (p == c)).sum())
        denom = int((g == c).sum()) + int((p == c).sum())
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation; 0.0 when either side is constant (undefined correlation)."""
    a, b = _pair(x, y)
    a, b = a.astype(np.float64), b.astype(np.float64)
    if len(a) < 2:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties sharing their average rank (what Spearman's rho needs)."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    # Boundaries of runs of equal values.
    starts = np.r_[0, np.flatnonzero(sorted_vals[1:] != sorted_vals[:-1]) + 1]
    ends = np.r_[starts[1:], len(values)]
    for s, e in zip(starts, ends, strict=False):
        ranks[order[s:e]] = (s + e + 1) / 2.0  # mean of ranks s+1 .. e
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson on average ranks, as scipy.stats.spearmanr)."""
    a, b = _pair(x, y)
    return pearson(_average_ranks(a.astype(np.float64)), _average_ranks(b.astype(np.float64)))
