"""The report's data of `[language_models]`: the corpus the models shared, and per model what its
train and score stages recorded (training time, tokens/s, parameters, held-out perplexity, samples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hanformer.recipes.report.collect import curves_from_metrics, read_jsonl
from hanformer.recipes.report.translation_collect import completed_summary
from hanformer.recipes.stages.lm_paths import (
    SCORE_PART,
    TRAIN_PART,
    LanguageModelLayout,
    lm_data_key,
    lm_key,
)


def collect_language_models(recipe: Any, run_dir: Path, stage_keys: set[str]) -> dict[str, Any] | None:
    """`{"corpus": ..., "models": {name: {kind, train, score, curves}}}` from this recipe's completed
    stages (a folder an earlier recipe left is not read); None when no model completed."""
    lms = recipe.language_models
    if lms is None:
        return None
    layout = LanguageModelLayout(Path(run_dir))
    models: dict[str, Any] = {}
    for name, model in lms.models.items():
        train, score = (completed_summary(layout.stage_dir(name, part)) if lm_key(name, part) in stage_keys else None
                        for part in (TRAIN_PART, SCORE_PART))
        if train is None and score is None:
            continue
        models[name] = {"kind": model.kind, "train": train or {}, "score": score or {},
                        "curves": curves_from_metrics(read_jsonl(layout.train_metrics(name)))}
    if not models:
        return None
    corpus = completed_summary(layout.data_dir) if lm_data_key() in stage_keys else None
    return {"corpus": {**(corpus or {}), "train": list(lms.train), "heldout": lms.heldout,
                       "budget": lms.budget}, "models": models}
