"""A recipe as its list of stages: check every input first, then build each stage in run order."""

from __future__ import annotations

from hanformer.errors import ConfigError
from hanformer.recipes.caching import Stage
from hanformer.recipes.recipe import Recipe
from hanformer.recipes.stages.common import check_files
from hanformer.recipes.stages.data import data_stage
from hanformer.recipes.stages.evaluate import evaluate_stage
from hanformer.recipes.stages.finetune import finetune_stages
from hanformer.recipes.stages.language_models import (
    check_language_model_files,
    language_model_stages,
)
from hanformer.recipes.stages.pretrain import pretrain_stage
from hanformer.recipes.stages.report import report_stage
from hanformer.recipes.stages.tokenizer import tokenizer_stage
from hanformer.recipes.stages.translation import check_translation_files, translation_stages


def build_stages(recipe: Recipe) -> list[Stage]:
    """Every stage of the recipe in run order, after checking each one (no work is done)."""
    check_inputs(recipe)
    stages: list[Stage] = []
    if recipe.tokenizer is not None:
        stages.append(tokenizer_stage(recipe))
    if recipe.data is not None:
        stages.append(data_stage(recipe))
    if recipe.pretrain is not None:
        stages.append(pretrain_stage(recipe))
    for variant, changes in recipe.variants.items():
        if changes.data:
            stages.append(data_stage(recipe, variant))
        stages.append(pretrain_stage(recipe, variant))
    for name, sec in recipe.finetune.items():
        stages.extend(finetune_stages(recipe, name, sec))
    if recipe.evaluate is not None:
        stages.append(evaluate_stage(recipe))
    for name, translation in recipe.translation.items():
        stages.extend(translation_stages(recipe, name, translation))
    if recipe.language_models is not None:
        stages.extend(language_model_stages(recipe))
    if recipe.report is not None:
        stages.append(report_stage(recipe, [s.key for s in stages]))
    return stages


def check_inputs(recipe: Recipe) -> None:
    """Every file a stage reads exists, and every stage has its input (an upstream stage or a path).

    Cheap checks first, all of them before any component config is built or any work starts.
    """
    p = recipe.path
    if not any((recipe.tokenizer, recipe.data, recipe.pretrain, recipe.variants, recipe.finetune, recipe.evaluate,
                recipe.translation, recipe.language_models, recipe.report)):
        raise ConfigError(f"{p}: no stages; add at least one of [tokenizer], [data], [pretrain], "
                          "[finetune.<task>], [evaluate], [translation.<name>], [language_models], [report]")
    if recipe.tokenizer is not None:
        if not recipe.tokenizer.input:
            raise ConfigError(f"{p} [tokenizer]: missing key 'input' (the text files to train the vocabulary on)")
        check_files(recipe.tokenizer.input, f"{p} [tokenizer]", "input")
    if recipe.data is not None:
        source = f"{p} [data]"
        if recipe.data.input:
            check_files(recipe.data.input, source, "input")
        elif recipe.tokenizer is None:
            raise ConfigError(f"{source}: missing key 'input' (the text to pretrain on)")
        if recipe.data.tokenizer:
            check_files([recipe.data.tokenizer], source, "tokenizer", directory=True)
        elif recipe.tokenizer is None:
            raise ConfigError(f"{source}: needs a tokenizer: add a [tokenizer] stage or set "
                              "[data] tokenizer = \"DIR\" (an existing tokenizer folder)")
    if recipe.pretrain is not None and recipe.data is None:
        raise ConfigError(f"{p} [pretrain]: needs token shards: add a [data] stage before [pretrain]")
    for variant in recipe.variants:
        if recipe.pretrain is None:
            raise ConfigError(f"{p} [variant.{variant}]: a variant changes the recipe's pretraining: "
                              "add [data] and [pretrain] stages")
    for name, sec in recipe.finetune.items():
        source = f"{p} [finetune.{name}]"
        for key in ("train", "valid", "test"):
            if getattr(sec, key):
                check_files([getattr(sec, key)], source, key)
        if sec.model:
            check_files([sec.model], source, "model", directory=True)
        elif recipe.pretrain is None:
            raise ConfigError(f"{source}: needs a model to fine-tune: add a [pretrain] stage or set "
                              f"[finetune.{name}] model = \"DIR\" (an existing checkpoint)")
    if recipe.evaluate is not None and not recipe.finetune:
        raise ConfigError(f"{p} [evaluate]: nothing to evaluate: add a [finetune.<task>] table")
    for name, table in recipe.translation.items():
        check_translation_files(recipe, name, table)
    check_language_model_files(recipe)
