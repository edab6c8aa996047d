"""The `[translation.<name>]` stages: an encoder-decoder model from parallel text, in three steps.

    translation/<name>/data    read the corpora (line-aligned files, TSV/CSV columns), carve the
                               validation pairs when there are no validation corpora (seeded)
    translation/<name>/train   `train_translation` through the shared Trainer (resumable); the
                               best model by validation BLEU is kept
    translation/<name>/score   greedy and beam-search translations of the validation sources,
                               BLEU/chrF with their sacreBLEU signatures, per-sentence outputs,
                               cross-attention of a few sentences

Every key of the table that is not the runner's own (`train`, `valid`, `beams`, ...; see
`TranslationSection`) goes to `TranslationTrainConfig` unchanged and is checked by it, trainer
keys such as `lr` or `max_steps` included; so a setting the training gains later works in a
recipe without a change here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from hanformer.models.encoder_decoder.settings import TranslationTrainConfig
from hanformer.models.encoder_decoder.train import train_translation
from hanformer.recipes.caching import Stage, StageContext
from hanformer.recipes.config_merge import build_config, stage_settings
from hanformer.recipes.recipe import Recipe, TranslationSection
from hanformer.recipes.stages.common import check_files, plain, stop_if_interrupted
from hanformer.recipes.stages.translation_data import CorpusSpec, parse_corpora, prepare_pairs
from hanformer.recipes.stages.translation_paths import (
    ALIGNMENTS_FILE,
    DATA_PART,
    SCORE_PART,
    SCORES_FILE,
    TRAIN_PART,
    TranslationLayout,
    model_part,
    translation_key,
)
from hanformer.recipes.stages.translation_score import ScorePlan, score_translations

# Settings the recipe runner fills in (where the pairs and the model go): not hashed, since the
# content of the pair files is hashed as the data stage's output.
_RUNNER_PATHS = ("train_source", "train_target", "valid_source", "valid_target", "out", "output_dir")
_CONFIG_FILE = "translation_config.json"  # train_translation's record of the run (sizes, counts)


def translation_corpora(recipe: Recipe, name: str, sec: TranslationSection) -> tuple[list[CorpusSpec], list[CorpusSpec]]:
    """The training and validation corpora of a table, checked (not read)."""
    source = f"{recipe.path} [translation.{name}]"
    return parse_corpora(sec.train, source, "train"), parse_corpora(sec.valid, source, "valid")


def check_translation_files(recipe: Recipe, name: str, sec: TranslationSection) -> None:
    """Every corpus file of the table exists (a `ConfigError` naming the table, corpus and key)."""
    source = f"{recipe.path} [translation.{name}]"
    train, valid = translation_corpora(recipe, name, sec)
    for key, specs in (("train", train), ("valid", valid)):
        for i, spec in enumerate(specs):
            for field in ("file", "source", "target"):
                if getattr(spec, field):
                    check_files([getattr(spec, field)], f"{source} {key}[{i}]", field)


def translation_stages(recipe: Recipe, name: str, sec: TranslationSection) -> list[Stage]:
    """The data, train and score stages of table `name`, every setting checked; no file is read."""
    source = f"{recipe.path} [translation.{name}]"
    train, valid = translation_corpora(recipe, name, sec)
    layout = TranslationLayout(recipe.run_dir, name)
    train_dir = layout.stage_dir(TRAIN_PART)
    (train_src, train_tgt), (valid_src, valid_tgt) = layout.pair_files("train"), layout.pair_files("valid")
    injected = {"train_source": os.fspath(train_src), "train_target": os.fspath(train_tgt),
                "valid_source": os.fspath(valid_src), "valid_target": os.fspath(valid_tgt),
                "out": os.fspath(train_dir), "trainer.output_dir": os.fspath(train_dir)}
    defaults: dict[str, Any] = {"trainer.seed": recipe.run.seed}
    if sec.budget:
        defaults["trainer.max_time"] = sec.budget
    config: TranslationTrainConfig = build_config(TranslationTrainConfig, sec.settings, injected, source, defaults)
    keeps_best = bool(config.trainer.metric_for_best)
    plan = ScorePlan.of(sec, config.max_length, keeps_best)
    corpora = [*train, *valid]
    data_key, train_key = translation_key(name, DATA_PART), translation_key(name, TRAIN_PART)
    # A given tokenizer or start-of-encoder BERT is an input: the stage reruns when its files change.
    tokenizer_inputs = [Path(p) for p in (config.tokenizer, config.init_encoder) if p]
    return [
        Stage(key=data_key, title=f"{name}: read the parallel corpora" + ("" if valid else
                                                                           ", carve validation pairs (seeded)"),
              run=_data_run(train, valid, config, layout),
              settings={"train": [dataclasses.asdict(c) for c in train], "valid": [dataclasses.asdict(c) for c in valid],
                        "valid_size": config.valid_size, "seed": config.trainer.seed},
              inputs=[Path(p) for c in corpora for p in c.paths], outputs=[]),
        Stage(key=train_key, title=f"{name}: train the {_model_words(config)}",
              run=_train_run(config), **stage_settings(config, _RUNNER_PATHS),
              inputs=tokenizer_inputs, upstream={data_key: ""}, outputs=[model_part(keeps_best)],
              resumable=True, budget=sec.budget),
        Stage(key=translation_key(name, SCORE_PART),
              title=f"{name}: translate the validation pairs (greedy" + (f", beam {sec.beams}" if sec.beams > 1
                                                                          else "") + "), BLEU/chrF",
              run=lambda ctx: score_translations(plan, layout), settings=dataclasses.asdict(plan),
              upstream={train_key: model_part(keeps_best), data_key: ""},
              outputs=[SCORES_FILE, ALIGNMENTS_FILE, *(f"{d}.jsonl" for d, _ in plan.decodings())]),
    ]


def _data_run(train: list[CorpusSpec], valid: list[CorpusSpec], config: TranslationTrainConfig,
              layout: TranslationLayout) -> Any:
    def run(ctx: StageContext) -> dict[str, Any]:
        return prepare_pairs(train, valid, config, layout)
    return run


def _train_run(config: TranslationTrainConfig) -> Any:
    def run(ctx: StageContext) -> dict[str, Any]:
        result = train_translation(config, resume=ctx.resume)
        stop_if_interrupted(result, ctx.stage.key)
        summary = plain(result)
        out = {"valid": summary.pop("eval_metrics", None) or {},
               **{k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and k != "output_dir"
                  and k not in ("checkpoint", "final_dir")}}
        record = ctx.dir / _CONFIG_FILE
        if record.is_file():  # the sizes train_translation worked out (parameters, vocabulary, pairs)
            facts = json.loads(record.read_text(encoding="utf-8"))
            out.update({k: facts[k] for k in ("parameters", "vocab_size", "train_pairs", "train_pairs_left_out",
                                              "train_source_tokens", "train_target_tokens", "valid_pairs",
                                              "valid_pairs_scored", "model") if k in facts})
        return out
    return run


def _model_words(config: TranslationTrainConfig) -> str:
    """What the train stage trains, for the plan: 'encoder-decoder Transformer', 'GRU
    encoder-decoder with bahdanau attention', ..."""
    if config.architecture == "transformer":
        return "encoder-decoder Transformer" + (" (its encoder started from a BERT)" if config.init_encoder else "")
    context = "no attention" if config.attention == "none" else f"{config.attention} attention"
    return f"{config.architecture.upper()} encoder-decoder ({context})"
