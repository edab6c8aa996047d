"""The `[evaluate]` stage: score every fine-tuned model on its task's held-out file (mean ± std
over repeated seeds), with a confusion matrix and example predictions for classifiers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hanformer.recipes.caching import Stage, StageContext
from hanformer.recipes.layout import BEST, EVALUATE, RESULTS, RunLayout, finetune_key
from hanformer.recipes.recipe import EvaluateSection, FinetuneSection, Recipe
from hanformer.recipes.stages.common import named_majority, plain, task_inits, task_seeds
from hanformer.recipes.stages.predictions import prediction_samples
from hanformer.tasks.evaluate import evaluate
from hanformer.tasks.finetune_config import mean_std
from hanformer.utils.files import atomic_write_json

# (table name, its section, initialisation): one fine-tuned model family to score.
Scored = tuple[str, FinetuneSection, str]


def evaluate_stage(recipe: Recipe) -> Stage:
    sec = recipe.evaluate
    assert sec is not None
    upstream: dict[str, str] = {}
    inputs: list[Path] = []
    plan: list[Scored] = []
    for name, task in recipe.finetune.items():
        for init in task_inits(recipe, task):
            upstream[finetune_key(name, init)] = "" if task_seeds(task) else BEST  # "": every seed's output
            plan.append((name, task, init))
        if task.test:
            inputs.append(Path(task.test))
    layout = RunLayout(recipe.run_dir)

    def run(ctx: StageContext) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for name, task, init in plan:
            entry = results.setdefault(name, {"task": task.task, "data": task.test, "runs": {}})
            entry["runs"][init] = _score(layout, name, task, init, sec, recipe.run.seed, entry, ctx) \
                if task.test else {}
        atomic_write_json(layout.evaluate_results, {"tasks": results})
        return {name: {init: r.get("test", {}) for init, r in e["runs"].items()} for name, e in results.items()}

    title = ("score every fine-tuned model on its held-out file" if inputs else
             "collect the validation scores (no task has a held-out `test` file)")
    return Stage(key=EVALUATE, title=title, run=run,
                 settings=dataclasses.asdict(sec), inputs=inputs, upstream=upstream,
                 outputs=[RESULTS], budget=sec.budget)


def _score(layout: RunLayout, name: str, task: FinetuneSection, init: str, sec: EvaluateSection,
           seed: int, entry: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
    """The held-out scores of one task's models from `init` (every seed), and for classifiers the
    first seed's confusion matrix and examples (`entry` gets the labels and example count)."""
    assert task.test is not None
    seeds = task_seeds(task)
    model_dirs = layout.best_dirs(name, init, seeds)
    out: dict[str, Any] = {}
    scores = []
    run_seeds: Sequence[int | None] = seeds or [None]  # None: one unseeded run
    for model_dir, run_seed in zip(model_dirs, run_seeds, strict=True):
        report = evaluate(model_dir, task.task, task.test, batch_size=sec.batch_size,
                          max_examples=sec.max_examples, seed=seed,
                          out=str(layout.evaluation_file(name, init, run_seed)), log=ctx.log)
        scores.append(plain(report.get("metrics", {})))
        if report.get("majority_baseline"):
            out["test_majority"] = named_majority(task.task, report["majority_baseline"])
    if len(scores) == 1:
        out["test"] = scores[0]
    else:
        summary = mean_std(scores)
        out.update(test={k: v["mean"] for k, v in summary.items()},
                   test_std={k: v["std"] for k, v in summary.items()}, test_runs=scores)
    out.update(prediction_samples(model_dirs[0], task, sec, seed, entry))
    return out
