"""The `[finetune.<task>]` stages: fine-tune from the pretrained model and from scratch (the
same architecture and settings), plus the task's TF-IDF baseline where it has one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hanformer.errors import ConfigError
from hanformer.recipes.caching import Stage, StageContext, StageRun
from hanformer.recipes.config_merge import build_config, stage_settings
from hanformer.recipes.layout import (
    DATA,
    FINAL,
    FINAL_CONFIG,
    PRETRAIN,
    SHARDS,
    TOKENIZER,
    RunLayout,
    finetune_key,
    pretrain_key,
    seed_parts,
)
from hanformer.recipes.recipe import FinetuneSection, Recipe
from hanformer.recipes.stages.baseline import baseline_stage
from hanformer.recipes.stages.common import (
    named_majority,
    plain,
    stop_if_interrupted,
    task_inits,
    task_seeds,
)
from hanformer.tasks.answer_types import scores_by_answer_type
from hanformer.tasks.finetune import finetune
from hanformer.tasks.finetune_config import FinetuneConfig, mean_std, quiet, read_split
from hanformer.tasks.registry import get_task

# Settings the recipe runner fills in (paths and wiring): not part of a stage's hashed settings.
_FINETUNE_PATHS = ("model", "train", "valid", "output_dir", "out", "resume")


def finetune_stages(recipe: Recipe, name: str, sec: FinetuneSection) -> list[Stage]:
    source = f"{recipe.path} [finetune.{name}]"
    try:
        task = get_task(sec.task)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    if sec.answer_types and task.kind != "qa":
        raise ConfigError(f"{source}: answer_types = true needs an extractive-QA task; {task.name!r} is a "
                          f"{task.kind} task: remove the key")
    layout = RunLayout(recipe.run_dir)
    files = [Path(p) for p in (sec.train, sec.valid, sec.test) if p]
    stages = []
    for init in task_inits(recipe, sec):
        variant = init if init in recipe.variants else None
        if sec.model:
            model_dir, upstream = Path(sec.model), {}
        else:
            model_dir, upstream = layout.pretrained_model(variant), {pretrain_key(variant): FINAL}
        out_dir = layout.finetune_dir(name, init)
        injected = {"task": sec.task, "model": str(model_dir), "train": sec.train, "valid": sec.valid,
                    "from_scratch": init == "scratch", "out": str(out_dir), "trainer.output_dir": str(out_dir)}
        defaults: dict[str, Any] = {"seed": recipe.run.seed, "trainer.seed": recipe.run.seed}
        if sec.budget:
            defaults.update({"max_time": sec.budget, "trainer.max_time": sec.budget})
        config = build_config(FinetuneConfig, sec.settings, injected, source, defaults)
        # From scratch reads only the architecture (config.json) and the tokenizer of the
        # pretrained model, so longer pretraining does not re-run it.
        up = dict(upstream)
        if up and init == "scratch":
            # The tokenizer comes from the [tokenizer] stage, or a folder copied into the shards.
            up = {PRETRAIN: FINAL_CONFIG, **({TOKENIZER: ""} if recipe.tokenizer else {DATA: SHARDS})}
        inputs = list(files) + ([model_dir] if not upstream else [])
        stages.append(Stage(
            key=finetune_key(name, init),
            title=f"fine-tune on {sec.task} " + _from_words(init),
            run=_finetune_run(config, layout.best_dirs(name, init, task_seeds(sec)) if sec.answer_types else None),
            **stage_settings(config, _FINETUNE_PATHS, **({"answer_types": True} if sec.answer_types else {})),
            inputs=inputs, upstream=up, outputs=seed_parts(task_seeds(sec)),
            resumable=True, budget=sec.budget))
    # Both runs read the same examples (only the initialisation differs), and so does the baseline.
    baseline = baseline_stage(recipe, name, sec, config)
    return stages + ([baseline] if baseline else [])


def _from_words(init: str) -> str:
    if init == "pretrained":
        return "from the pretrained model"
    if init == "scratch":
        return "from scratch (same architecture)"
    return f"from the pretrained model of variant {init}"


def _finetune_run(config: FinetuneConfig, answer_type_models: list[Path] | None = None) -> StageRun:
    """Fine-tune; with `answer_type_models` (each seed's best model) also score them by answer type."""
    def run(ctx: StageContext) -> dict[str, Any]:
        result = finetune(config, resume=ctx.resume, log=ctx.log)
        stop_if_interrupted(result, ctx.stage.key)
        spread = {k: v["std"] for k, v in (getattr(result, "summary", None) or {}).items()}
        per_seed = [plain(r.best_metrics) for r in getattr(result, "runs", None) or []]
        summary = plain(result)
        valid = summary.pop("best_metrics", None) or summary.pop("eval_metrics", None) or {}
        out = {"valid": valid, **{k: v for k, v in summary.items() if isinstance(v, (int, float))}}
        if answer_type_models:
            by_type = scores_by_answer_type(answer_type_models, config.task,
                                            read_split(get_task(config.task), config, quiet).valid)
            ctx.log("validation by answer type: " + ", ".join(f"{n} {k} questions" for k, n in
                                                               by_type["questions"].items()))
            out["valid_answer_types"] = {"questions": by_type["questions"], "tags": by_type["tags"]}
            if per_seed:
                for run_scores, extra in zip(per_seed, by_type["runs"], strict=True):
                    run_scores.update(extra)
                summary_by_type = mean_std(by_type["runs"])
                valid.update({k: v["mean"] for k, v in summary_by_type.items()})
                spread.update({k: v["std"] for k, v in summary_by_type.items()})
            else:
                valid.update(by_type["runs"][0])
        if per_seed:
            out.update(valid_std=spread, seeds=list(getattr(config, "seeds", [])), valid_runs=per_seed)
        if result.majority_baseline:
            out["valid_majority"] = named_majority(config.task, result.majority_baseline)
        return out
    return run
