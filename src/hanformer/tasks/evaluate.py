"""`evaluate`: score a fine-tuned model on a labelled file with the task's official metrics.

The task and its encoding settings come from the model's `task.json` (written by `finetune`),
so `--model DIR --data FILE` is enough. `--seeds 1,2,3` scores `DIR/seed-1`, `DIR/seed-2`, ...
(as written by `finetune --seeds`) and reports mean ± std.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from hanformer.errors import ConfigError
from hanformer.tasks.finetune_config import (
    DataConfig,
    Log,
    format_mean_std,
    mean_std,
    read_examples,
    subsample,
)
from hanformer.tasks.model_dir import resolve_model_dir
from hanformer.tasks.model_io import read_task_file
from hanformer.tasks.registry import describe_majority, majority_scores
from hanformer.utils.config import setting
from hanformer.utils.files import atomic_write_json, check_output_file, require_file


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclasses.dataclass
class EvaluateConfig:
    model: str = setting("", "fine-tuned model directory (or a finetune output directory: its best/ is used)")
    data: str = setting("", "labelled file in the task's format")
    task: str | None = setting(None, "task name (default: the one recorded in the model's task.json)")
    out: str | None = setting(None, "where to write the metrics JSON (default: MODEL/eval.json)")
    batch_size: int = setting(64, "evaluation batch size")
    max_examples: int = setting(0, "score a seeded random subset of this many examples (0: all)")
    seed: int = setting(42, "seed of the --max-examples subset")
    seeds: list[int] = setting([], "score MODEL/seed-N for each seed and report mean ± std, e.g. 1,2,3")
    threads: int = setting(0, "CPU threads for torch (0: torch's default)")
    device: str = setting("auto", "auto, cpu, cuda, ...")
    data_options: DataConfig = dataclasses.field(default_factory=DataConfig)

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("evaluate needs --model (a fine-tuned model directory)")
        if not self.data:
            raise ConfigError("evaluate needs --data (a labelled file)")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.max_examples < 0:
            raise ConfigError(f"--max-examples {self.max_examples}: must be 0 (all) or more")
        if self.threads < 0:
            raise ConfigError(f"--threads {self.threads}: must be 0 (torch's default) or more")


def evaluate(config: EvaluateConfig | str | Path, task: str | None = None, data: str | Path | None = None,
             log: Log = _stderr, **options: Any) -> dict[str, Any]:
    """Metrics of the model on `config.data`, also written as JSON; with seeds, mean ± std too.

    Also callable as `evaluate(model_dir, task, data, batch_size=...)`. The report's `metrics`
    holds the scores (`summary` with mean/std per metric when seeds are given)."""
    if not isinstance(config, EvaluateConfig):
        config = EvaluateConfig(model=str(config), task=task, data=str(data or ""), **options)
    config.validate()
    import torch

    from hanformer.tasks.inference import gold_of, score_examples
    from hanformer.tasks.task_model import TaskModel

    if config.threads:
        torch.set_num_threads(config.threads)
    dirs = [resolve_model_dir(Path(config.model) / f"seed-{s}") for s in config.seeds] if config.seeds \
        else [resolve_model_dir(config.model)]
    # Paths first: a wrong one fails at once, before any model is loaded.
    require_file(config.data, "data file")
    out = Path(config.out) if config.out else (Path(config.model) if config.seeds else dirs[0]) / "eval.json"
    check_output_file(out, "--out" if config.out else "the metrics file (choose another with --out)",
                      inputs=[config.data])
    runs: list[dict[str, Any]] = []
    skipped = 0
    for d in dirs:
        loaded = TaskModel.load(d, config.task, config.device)
        spec, labels = loaded.task, loaded.labels
        examples, skipped = read_examples(spec, config.data, config.data_options, labels=spec.labels, log=log)
        examples = subsample(examples, config.max_examples, config.seed)
        metrics = score_examples(spec, loaded.model, loaded.encoder, examples, loaded.settings, labels,
                                 config.batch_size, source=str(d))
        log(f"{d}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        runs.append({"model": str(d), "task": spec.name, "examples": len(examples), "metrics": metrics})
    # Every seed was fine-tuned on the same data, so they share one most frequent label.
    floor = majority_scores(spec, (read_task_file(dirs[0]) or {}).get("majority_label"),
                            gold_of(spec, examples), labels=labels)
    if floor:
        log(describe_majority(floor))
    report: dict[str, Any] = {"data": str(config.data), "skipped_rows": skipped, **runs[0]}
    if config.seeds:
        summary = mean_std([r["metrics"] for r in runs])
        report = {"data": str(config.data), "skipped_rows": skipped, "seeds": config.seeds,
                  "summary": summary, "runs": runs}
        log(f"over seeds {','.join(map(str, config.seeds))}: {format_mean_std(summary)}")
    if floor:
        report["majority_baseline"] = floor
    atomic_write_json(out, report)
    log(f"metrics written to {out}")
    return report
