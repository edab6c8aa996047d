"""The `[data]` stage: split sentences and tokenize the pretraining text into shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hanformer.data.prepare import PrepareConfig, describe, prepare_data
from hanformer.recipes.caching import Stage, StageContext
from hanformer.recipes.config_merge import build_config, stage_settings
from hanformer.recipes.layout import DATA, SHARDS
from hanformer.recipes.recipe import Recipe
from hanformer.recipes.stages.common import plain, tokenizer_source


def data_stage(recipe: Recipe) -> Stage:
    sec = recipe.data
    assert sec is not None
    source = f"{recipe.path} [data]"
    files = [Path(p) for p in sec.input or (recipe.tokenizer.input if recipe.tokenizer else [])]
    upstream, tok_dir = tokenizer_source(recipe, sec.tokenizer)
    config = build_config(PrepareConfig, sec.settings, {}, source, {"seed": recipe.run.seed})

    def run(ctx: StageContext) -> dict[str, Any]:
        summary = prepare_data([str(f) for f in files], tok_dir, ctx.dir / SHARDS, config)
        ctx.log(describe(summary))
        return plain(summary)

    return Stage(key=DATA, title="split sentences and tokenize the text into shards", run=run,
                 **stage_settings(config),
                 inputs=files + ([tok_dir] if not upstream else []),
                 upstream=upstream, outputs=[SHARDS], budget=sec.budget)
