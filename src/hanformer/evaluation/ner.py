"""Named-entity metrics: entity-level micro F1 exactly as `seqeval` computes it, and KLUE-NER's
character-level macro F1.

`seqeval` (default, non-strict mode) is the score everyone reports for CoNLL-2003; its chunking
is lenient (an `I-X` after `O` starts an entity), and we reproduce it rule for rule so that
our numbers can be put next to published ones without installing it. The tests compare the
two on random tag sequences.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


def _split_tag(tag: str) -> tuple[str, str]:
    # seqeval: prefix is the first character; type is what follows the first '-' ('_' if none).
    prefix = tag[0] if tag else "O"
    type_ = tag[1:].split("-", maxsplit=1)[-1] or "_"
    return prefix, type_


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        # (O, E) and (O, I) start a chunk; so do (E, E), (E, I), (S, E), (S, I).
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entity chunks `(type, start, end_inclusive)` of one tag sequence, seqeval's default rules."""
    chunks = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, type_ = _split_tag(tag)
        if _end_of_chunk(prev_tag, prefix, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, prefix, prev_type, type_):
            begin = i
        prev_tag, prev_type = prefix, type_
    return chunks


@dataclass
class EntityScores:
    """Micro precision/recall/F1 over entities, plus the same per entity type."""

    precision: float
    recall: float
    f1: float
    per_type: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "per_type": self.per_type}


def _prf(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> EntityScores:
    """Entity-level scores of sentences of IOB2 tags (`gold[i]` and `pred[i]` of equal length)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    true_set: set[tuple[str, int, int]] = set()
    pred_set: set[tuple[str, int, int]] = set()
    offset = 0
    for i, (g, p) in enumerate(zip(gold, pred, strict=False)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        true_set.update((t, s + offset, e + offset) for t, s, e in get_entities(g))
        pred_set.update((t, s + offset, e + offset) for t, s, e in get_entities(p))
        offset += len(g) + 1  # seqeval joins sentences with an 'O' between them
    tp = len(true_set & pred_set)
    precision, recall, f1 = _prf(tp, len(pred_set), len(true_set))
    per_type: dict[str, dict[str, float]] = {}
    for t in sorted({e[0] for e in true_set | pred_set}):
        ts = {e for e in true_set if e[0] == t}
        ps = {e for e in pred_set if e[0] == t}
        tp_t = len(ts & ps)
        pt, rt, ft = _prf(tp_t, len(ps), len(ts))
        per_type[t] = {"precision": pt, "recall": rt, "f1": ft, "support": len(ts)}
    return EntityScores(precision, recall, f1, per_type)


def entity_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Entity-level micro F1 (seqeval's `f1_score` in its default mode)."""
    return entity_scores(gold, pred).f1


def char_macro_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                  labels: Sequence[str] | None = None) -> float:
    """KLUE-NER's character-level macro F1: per-tag F1 over every character, averaged over
    the entity tags (`B-*`/`I-*`, O excluded) of `labels` (default: the tags seen in gold).

    A tag that is neither in gold nor predicted counts as F1 = 1, as KLUE's scorer
    (`zero_division=True`) does.
    """
    flat_g = [t for s in gold for t in s]
    flat_p = [t for s in pred for t in s]
    if len(flat_g) != len(flat_p):
        raise ValueError(f"{len(flat_g)} gold characters but {len(flat_p)} predicted")
    tags = [t for t in (labels if labels is not None else sorted(set(flat_g))) if t != "O"]
    if not tags:
        return 0.0
    n_gold, n_pred = Counter(flat_g), Counter(flat_p)
    n_tp = Counter(g for g, p in zip(flat_g, flat_p, strict=True) if g == p)
    scores = []
    for t in tags:
        tp, n_g, n_p = n_tp[t], n_gold[t], n_pred[t]
        if n_g + n_p == 0:
            scores.append(1.0)
            continue
        prec = tp / n_p if n_p else 1.0
        rec = tp / n_g if n_g else 1.0
        scores.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(scores) / len(scores)
