"""Extractive-QA metrics: exact match and F1 with the official normalizations.

* SQuAD 1.1 (`style="squad"`): lower-case, drop ASCII punctuation and the articles a/an/the,
  collapse whitespace; F1 over whitespace tokens.
* KorQuAD 1.0 (`style="korquad"`): replace quotes, brackets and parentheses by spaces,
  lower-case, drop ASCII punctuation, collapse whitespace; F1 over *characters* (spaces
  excluded), because Korean particles glue onto words and token F1 would be too harsh.

Both take the maximum over the gold answers of a question and report percentages (0-100), as
the official evaluation scripts print them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Literal

QAStyle = Literal["squad", "korquad"]

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# KorQuAD's evaluation script turns these into spaces before the usual steps.
_KORQUAD_SYMBOLS = re.compile("['\"《》<>〈〉()‘’]")


def normalize_squad(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_korquad(text: str) -> str:
    text = _KORQUAD_SYMBOLS.sub(" ", text).lower()
    return " ".join("".join(ch for ch in text if ch not in _PUNCT).split())


def _normalize(text: str, style: QAStyle) -> str:
    return normalize_squad(text) if style == "squad" else normalize_korquad(text)


def exact_match(prediction: str, truth: str, style: QAStyle = "squad") -> float:
    return float(_normalize(prediction, style) == _normalize(truth, style))


def f1(prediction: str, truth: str, style: QAStyle = "squad") -> float:
    pred_tokens = _normalize(prediction, style).split()
    true_tokens = _normalize(truth, style).split()
    if style == "korquad":
        pred_tokens = [c for tok in pred_tokens for c in tok]
        true_tokens = [c for tok in true_tokens for c in tok]
    common = Counter(pred_tokens) & Counter(true_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(true_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_scores(predictions: Mapping[str, str], references: Mapping[str, Iterable[str]],
              style: QAStyle = "squad") -> dict[str, float]:
    """`{"exact_match": .., "f1": .., "count": n}` over every question in `references`.

    A question without a prediction scores 0, as in the official scripts.
    """
    em_total = f1_total = 0.0
    for qid, truths in references.items():
        truths = list(truths)
        pred = predictions.get(qid)
        if pred is None or not truths:
            continue
        em_total += max(exact_match(pred, t, style) for t in truths)
        f1_total += max(f1(pred, t, style) for t in truths)
    n = len(references)
    return {"exact_match": 100.0 * em_total / n if n else 0.0,
            "f1": 100.0 * f1_total / n if n else 0.0, "count": float(n)}
