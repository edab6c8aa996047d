"""The `[data]` stage: split sentences and tokenize the pretraining text into shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hanformer.data.prepare import PrepareConfig, describe, prepare_data
from hanformer.recipes.caching import Stage, StageContext
from hanformer.recipes.config_merge import build_config, overlay, stage_settings
from hanformer.recipes.layout import SHARDS, data_key
from hanformer.recipes.recipe import Recipe
from hanformer.recipes.stages.common import plain, tokenizer_source


def data_stage(recipe: Recipe, variant: str | None = None) -> Stage:
    """The recipe's shards, or with `variant` those of `[variant.<variant>]` (its `data`
    settings over the `[data]` table's, the same text and tokenizer)."""
    sec = recipe.data
    assert sec is not None
    settings, source = sec.settings, f"{recipe.path} [data]"
    if variant is not None:
        settings, source = overlay(settings, recipe.variants[variant].data), f"{recipe.path} [variant.{variant}] data"
    files = [Path(p) for p in sec.input or (recipe.tokenizer.input if recipe.tokenizer else [])]
    upstream, tok_dir = tokenizer_source(recipe, sec.tokenizer)
    config = build_config(PrepareConfig, settings, {}, source, {"seed": recipe.run.seed})

    def run(ctx: StageContext) -> dict[str, Any]:
        summary = prepare_data([str(f) for f in files], tok_dir, ctx.dir / SHARDS, config)
        ctx.log(describe(summary))
        return plain(summary)

    title = "split sentences and tokenize the text into shards" + (f" (variant {variant})" if variant else "")
    return Stage(key=data_key(variant), title=title, run=run,
                 **stage_settings(config),
                 inputs=files + ([tok_dir] if not upstream else []),
                 upstream=upstream, outputs=[SHARDS], budget=sec.budget)
