"""The TF-IDF + logistic-regression baseline stage of a classification task (`finetune/<task>/tfidf`)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

from hanformer.errors import ConfigError
from hanformer.recipes.caching import Stage, StageContext
from hanformer.recipes.config_merge import stage_settings
from hanformer.recipes.layout import BASELINE_FILE, baseline_key
from hanformer.recipes.recipe import FinetuneSection, Recipe
from hanformer.tasks.baseline import BaselineConfig, run_baseline
from hanformer.tasks.finetune_config import FinetuneConfig
from hanformer.tasks.registry import get_task


def baseline_absence(recipe: Recipe, name: str, sec: FinetuneSection) -> str | None:
    """Why the classification task of [finetune.<name>] gets no TF-IDF baseline; None when it gets
    one, or when the task is not classification (such tasks never have one). `baseline = true`
    that cannot be honoured is an error naming the table and the key."""
    source = f"{recipe.path} [finetune.{name}]"
    kind = get_task(sec.task).kind
    if kind != "classification":
        if sec.baseline:
            raise ConfigError(f"{source}: baseline = true: the TF-IDF baseline is for classification tasks, "
                              f"and {sec.task} is a {kind} task; remove the key")
        return None
    if sec.baseline is False:
        return "switched off in the recipe (baseline = false)"
    if importlib.util.find_spec("sklearn") is None:
        if sec.baseline:
            raise ConfigError(f"{source}: baseline = true needs scikit-learn: pip install "
                              "'hanformer[baselines]', or set baseline = false")
        return "scikit-learn is not installed (pip install 'hanformer[baselines]')"
    return None


def baseline_stage(recipe: Recipe, name: str, sec: FinetuneSection, finetune_config: FinetuneConfig) -> Stage | None:
    """The TF-IDF + logistic-regression baseline of a classification task, trained on the examples
    the fine-tuning runs read (the settings of `finetune_config`) and, when the recipe has an
    [evaluate] stage, scored on the held-out examples the models are scored on; None when the
    task gets no baseline (`baseline_absence`)."""
    if get_task(sec.task).kind != "classification" or baseline_absence(recipe, name, sec) is not None:
        return None
    config = _baseline_config(recipe, sec, finetune_config)
    try:
        config.validate()
    except ConfigError as e:
        raise ConfigError(f"{recipe.path} [finetune.{name}]: baseline: {e.message}") from None

    def run(ctx: StageContext) -> dict[str, Any]:
        report = run_baseline(dataclasses.replace(config, out=str(ctx.dir / BASELINE_FILE)), log=ctx.log)
        summary = {k: report[k] for k in ("model", "train_examples", "valid_examples")}
        summary["valid"] = report["metrics"]
        if "test" in report:
            summary.update(test=report["test"]["metrics"], test_examples=report["test"]["examples"])
        return summary

    return Stage(key=baseline_key(name),
                 title=f"train the TF-IDF + logistic-regression baseline on {sec.task} (the same labels)",
                 run=run, **stage_settings(config, ("train", "valid", "test", "out")),
                 inputs=[Path(p) for p in (config.train, config.valid, config.test) if p],
                 outputs=[BASELINE_FILE])


def _baseline_config(recipe: Recipe, sec: FinetuneSection, ft: FinetuneConfig) -> BaselineConfig:
    """The baseline's config: the fine-tuning runs' examples, and the evaluation's held-out ones."""
    test = sec.test if recipe.evaluate is not None else None
    return BaselineConfig(task=ft.task, train=ft.train, valid=ft.valid, valid_fraction=ft.valid_fraction,
                          split_seed=ft.split_seed, max_train_examples=ft.max_train_examples,
                          max_valid_examples=ft.max_valid_examples, test=test,
                          max_test_examples=recipe.evaluate.max_examples if recipe.evaluate else 0,
                          test_seed=recipe.run.seed, data=dataclasses.replace(ft.data))
