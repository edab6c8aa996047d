"""The names metrics go by: which key of the trainer's records is which curve, which score is
a task's main one, and which scores are fractions (shown as percentages)."""

from __future__ import annotations

from typing import Any

MLM_KEYS = ("mlm_accuracy", "masked_lm_accuracy", "eval_mlm_accuracy", "mlm_acc")
NSP_KEYS = ("nsp_accuracy", "eval_nsp_accuracy", "nsp_acc")
PRIMARY_METRICS = ("accuracy", "entity_f1", "f1", "pearson", "exact_match", "spearman", "macro_f1")
# Metrics where larger is better and that live in [0, 1] (shown as percentages).
FRACTION_METRICS = {"accuracy", "macro_f1", "f1", "entity_f1", "char_f1", "exact_match", "precision",
                     "recall", "mlm_accuracy", "nsp_accuracy", "rtd_accuracy", "rtd_baseline_accuracy",
                     "replaced_recall", "replaced_precision"}


def first_key(rows: list[dict[str, Any]], keys: tuple[str, ...], contains: tuple[str, ...] = ()) -> str | None:
    seen = set().union(*(r.keys() for r in rows)) if rows else set()
    for k in keys:
        if k in seen:
            return k
    for k in sorted(seen):
        if contains and all(c in k for c in contains):
            return k
    return None


def primary_metric(metrics: dict[str, Any]) -> str | None:
    for k in PRIMARY_METRICS:
        if isinstance(metrics.get(k), (int, float)):
            return k
    numeric = [k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return numeric[0] if numeric else None


def is_fraction(metric: str, *values: Any) -> bool:
    """Shown as a percentage? Accuracy-like metrics in [0, 1] (QA's EM/F1 already come as 0-100)."""
    return metric in FRACTION_METRICS and all(abs(v) <= 1 for v in values if isinstance(v, (int, float)))
