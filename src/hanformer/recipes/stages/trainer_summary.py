"""What a stage keeps of a `Trainer` run for the manifest and the report: the plain numbers of its
`TrainResult` (last evaluation under `valid`) and the mean training throughput of its metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hanformer.recipes.report.collect import read_jsonl
from hanformer.recipes.stages.common import plain

_PATHS = ("output_dir", "checkpoint", "final_dir")  # where the run is, not what it measured


def trainer_summary(result: Any) -> dict[str, Any]:
    """`result`'s numbers and words (steps, elapsed, stopped by, ...), the last evaluation as `valid`."""
    summary = plain(result)
    valid = summary.pop("eval_metrics", None) or {}
    out = {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and k not in _PATHS}
    return {"valid": valid, **out}


def mean_tokens_per_s(metrics: Path) -> float | None:
    """The mean of the training throughput the trainer logged (`tokens_per_s`), if it logged any."""
    speeds = [r["tokens_per_s"] for r in read_jsonl(metrics) if isinstance(r.get("tokens_per_s"), (int, float))]
    return round(sum(speeds) / len(speeds), 1) if speeds else None
