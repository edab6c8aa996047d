"""The `[pretrain]` stage: pretrain on the shards (masked-LM + NSP, masked-LM, ELECTRA or GPT)."""

from __future__ import annotations

from typing import Any

from hanformer.pretraining.config import PretrainConfig
from hanformer.pretraining.run import pretrain
from hanformer.recipes.caching import Stage, StageContext
from hanformer.recipes.config_merge import build_config, overlay, stage_settings
from hanformer.recipes.layout import (
    FINAL,
    FINAL_CONFIG,
    SHARDS,
    TRAINER_METRICS,
    RunLayout,
    data_key,
    pretrain_key,
)
from hanformer.recipes.recipe import Recipe
from hanformer.recipes.report.collect import read_jsonl
from hanformer.recipes.stages.common import plain, stop_if_interrupted

# How the plan names each objective; the default (mlm_nsp) is the last one.
_OBJECTIVE_WORDS = {"mlm": "masked-LM (no next-sentence prediction)", "rtd": "replaced-token detection (ELECTRA)",
                    "clm": "next-token prediction (GPT)"}
_DEFAULT_OBJECTIVE_WORDS = "masked-LM + next-sentence prediction"


def pretrain_stage(recipe: Recipe, variant: str | None = None) -> Stage:
    """The recipe's pretraining, or with `variant` that of `[variant.<variant>]`: its `pretrain`
    settings over the `[pretrain]` table's, on its own shards when it changes `[data]`."""
    sec = recipe.pretrain
    assert sec is not None
    settings, source, shards_of = sec.settings, f"{recipe.path} [pretrain]", None
    if variant is not None:
        changes = recipe.variants[variant]
        settings, source = overlay(settings, changes.pretrain), f"{recipe.path} [variant.{variant}] pretrain"
        shards_of = variant if changes.data else None
    layout = RunLayout(recipe.run_dir)
    injected = {"data": str(layout.shards_dir(shards_of)), "trainer.output_dir": str(layout.pretrain_dir(variant))}
    defaults: dict[str, Any] = {"trainer.seed": recipe.run.seed}
    if sec.budget:
        defaults["trainer.max_time"] = sec.budget
    config = build_config(PretrainConfig, settings, injected, source, defaults)

    def run(ctx: StageContext) -> dict[str, Any]:
        result = pretrain(config, resume=ctx.resume)
        stop_if_interrupted(result, ctx.stage.key)
        summary = plain(result)
        summary.update(summary.pop("eval_metrics", {}) or {})
        rows = read_jsonl(ctx.dir / TRAINER_METRICS)
        speeds = [r["tokens_per_s"] for r in rows if isinstance(r.get("tokens_per_s"), (int, float))]
        if speeds:
            summary["tokens_per_s"] = round(sum(speeds) / len(speeds))
        return {k: v for k, v in summary.items() if k not in ("output_dir", "checkpoint", "final_dir")}

    objective = _OBJECTIVE_WORDS.get(getattr(config, "objective", ""), _DEFAULT_OBJECTIVE_WORDS)
    title = f"pretrain with {objective}" + (f" (variant {variant})" if variant else "")
    return Stage(key=pretrain_key(variant), title=title, run=run,
                 **stage_settings(config, ("data", "output_dir")), upstream={data_key(shards_of): SHARDS},
                 outputs=[FINAL, FINAL_CONFIG], resumable=True, budget=sec.budget)
