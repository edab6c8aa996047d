"""Keeping the best model: the metric it is judged by (checked before the first step) and
whether an evaluation improves on the best so far."""

from __future__ import annotations

import difflib
from collections.abc import Collection

from hanformer.errors import ConfigError
from hanformer.training.config import TrainerConfig


def check_metric_for_best(config: TrainerConfig, has_eval: bool, metric_names: Collection[str] | None) -> None:
    """metric_for_best names a metric the evaluation reports (checked before training starts, so a
    typo does not surface only at the first evaluation, after the training time is spent)."""
    name = config.metric_for_best
    if not name:
        return
    if not has_eval:
        raise ConfigError(f"metric_for_best (--metric-for-best) {name!r}: this run has no evaluation to "
                          "take it from; leave it out")
    if metric_names is not None and name not in metric_names:
        close = difflib.get_close_matches(name, list(metric_names), n=1)
        raise ConfigError(f"metric_for_best (--metric-for-best) {name!r} is not among the evaluation metrics"
                          + (f" (did you mean {close[0]!r}?)" if close else "")
                          + f"; choose one of: {', '.join(metric_names)}")


def tracked_value(metrics: dict[str, float], name: str) -> float:
    """The metric_for_best of one evaluation (an eval_fn may report other names than it declared)."""
    if name not in metrics:
        raise ConfigError(f"metric_for_best {name!r} is not among the "
                          f"evaluation metrics: {', '.join(metrics)}")
    return float(metrics[name])


def improves(value: float, best: float | None, greater_is_better: bool) -> bool:
    if best is None:
        return True
    return value > best if greater_is_better else value < best
