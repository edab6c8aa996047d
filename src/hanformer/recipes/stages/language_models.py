"""The `[language_models]` stages: the models before the Transformer and GPT, side by side on one
corpus, one tokenizer and one wall-clock budget.

    lm/data            the training and held-out documents (carved, seeded, unless a held-out
                       file is given), one document per line
    lm/<name>/train    one model per [language_models.<name>] table (see `lm_train.py`)
    lm/<name>/score    its held-out perplexity per word piece and its samples (see `lm_score.py`)

Every key of a model table but `kind` and `budget` goes to that kind's own config unchanged and
is checked by it (trainer keys such as `lr` included), as the translation tables do.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hanformer.errors import ConfigError
from hanformer.recipes.caching import Stage, StageContext
from hanformer.recipes.recipe import LanguageModelsSection, Recipe
from hanformer.recipes.stages.common import check_files, tokenizer_source
from hanformer.recipes.stages.lm_data import CorpusPlan, prepare_lm_corpus
from hanformer.recipes.stages.lm_paths import (
    HELDOUT_TEXT,
    SCORE_PART,
    SCORES_FILE,
    TRAIN_PART,
    TRAIN_TEXT,
    LanguageModelLayout,
    lm_data_key,
    lm_key,
    model_part,
)
from hanformer.recipes.stages.lm_score import ScorePlan, score_language_model
from hanformer.recipes.stages.lm_train import train_plan


def check_language_model_files(recipe: Recipe) -> None:
    """The corpus files exist and the models have a tokenizer (a `ConfigError` naming the key)."""
    lms = recipe.language_models
    if lms is None:
        return
    source = f"{recipe.path} [language_models]"
    check_files(lms.train, source, "train")
    if lms.heldout:
        check_files([lms.heldout], source, "heldout")
    if lms.tokenizer:
        check_files([lms.tokenizer], source, "tokenizer", directory=True)
    elif recipe.tokenizer is None:
        raise ConfigError(f"{source}: needs a tokenizer: add a [tokenizer] stage or set "
                          "[language_models] tokenizer = \"DIR\" (an existing tokenizer folder)")


def _corpus_plan(lms: LanguageModelsSection, seed: int) -> CorpusPlan:
    return CorpusPlan(train=tuple(lms.train), heldout=lms.heldout, heldout_documents=lms.heldout_documents,
                      max_documents=lms.max_documents, input_format=lms.input_format, seed=seed)


def language_model_stages(recipe: Recipe) -> list[Stage]:
    """The data stage and every model's train and score stages, each config checked; no file is read."""
    lms = recipe.language_models
    assert lms is not None
    layout = LanguageModelLayout(recipe.run_dir)
    tokenizer_upstream, tokenizer_dir = tokenizer_source(recipe, lms.tokenizer)
    corpus = _corpus_plan(lms, recipe.run.seed)
    data_key = lm_data_key()

    def data_run(ctx: StageContext) -> dict[str, object]:
        return prepare_lm_corpus(corpus, layout)

    stages = [Stage(key=data_key, title="language models: the training and held-out documents"
                    + ("" if lms.heldout else " (carved, seeded)"), run=data_run,
                    settings=dataclasses.asdict(corpus),
                    inputs=[Path(p) for p in (*lms.train, *([lms.heldout] if lms.heldout else []))],
                    outputs=[TRAIN_TEXT, HELDOUT_TEXT])]
    tokenizer_inputs = [] if tokenizer_upstream else [tokenizer_dir]
    for name, model in lms.models.items():
        source = f"{recipe.path} [language_models.{name}]"
        train_key, train_dir = lm_key(name, TRAIN_PART), layout.stage_dir(name, TRAIN_PART)
        plan = train_plan(name, model, lms, source, layout.train_text, tokenizer_dir, train_dir, recipe.run.seed)
        part = model_part(model.kind)
        stages.append(Stage(key=train_key, title=plan.title, run=plan.run, settings=plan.settings,
                            setting_defaults=plan.setting_defaults, inputs=tokenizer_inputs,
                            upstream={data_key: TRAIN_TEXT, **tokenizer_upstream}, outputs=[part] if part else [],
                            resumable=plan.resumable, budget=None if model.kind == "ngram" else model.budget or lms.budget))
        stages.append(_score_stage(name, ScorePlan.of(model.kind, lms, recipe.run.seed), layout, train_key, part))
    return stages


def _score_stage(name: str, plan: ScorePlan, layout: LanguageModelLayout, train_key: str, part: str) -> Stage:
    def run(ctx: StageContext) -> dict[str, object]:
        return score_language_model(plan, layout.model_dir(name, plan.kind), layout.heldout_text,
                                    layout.scores_file(name))

    return Stage(key=lm_key(name, SCORE_PART), title=f"{name}: held-out perplexity per word piece, samples",
                 run=run, settings=dataclasses.asdict(plan), upstream={train_key: part, lm_data_key(): HELDOUT_TEXT},
                 outputs=[SCORES_FILE])
