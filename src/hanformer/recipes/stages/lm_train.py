"""The train stage of one `[language_models.<name>]` model, per kind:

    ngram       `train_ngram` counts the word pieces of train.txt (not budgeted: counting takes
                seconds where the neural models take their budget)
    lstm, gru   `train_rnn` on train.txt (resumable), the run's budget as the trainer's max_time
    gpt         train.txt -> token shards (`prepare_data`, one sentence per line, so each shard
                document is one document of train.txt), then `pretrain` with the causal-LM objective
                (resumable), the same budget

Each kind's config is built (and checked) from the table when the stages are built, so a typo in
the last model fails before the first one trains.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hanformer.data.prepare import PrepareConfig, prepare_data
from hanformer.errors import ConfigError
from hanformer.models.checkpoint import load_model
from hanformer.models.ngram.api import train_ngram
from hanformer.models.ngram.config import NgramConfig, check_config
from hanformer.models.rnn.settings import RNNTrainConfig
from hanformer.models.rnn.train import train_rnn
from hanformer.pretraining.config import PretrainConfig
from hanformer.pretraining.run import pretrain
from hanformer.recipes.caching import StageContext
from hanformer.recipes.config_merge import build_config, stage_settings
from hanformer.recipes.layout import FINAL, TRAINER_METRICS
from hanformer.recipes.recipe import LanguageModelSection, LanguageModelsSection
from hanformer.recipes.stages.common import stop_if_interrupted
from hanformer.recipes.stages.lm_paths import SHARDS
from hanformer.recipes.stages.trainer_summary import mean_tokens_per_s, trainer_summary

# The text the runner writes is plain text (see lm_paths.py); its paths are not hashed, since the
# data stage's output is.
_TEXT_FORMAT: Literal["text"] = "text"
_RNN_PATHS = ("input", "tokenizer", "out", "output_dir")
_GPT_PATHS = ("data", "tokenizer", "output_dir")
_GPT_HELD_OUT = 0.01  # share of training documents GPT's curves are scored on: the RNN's valid_fraction default


@dataclass
class TrainPlan:
    """One model's training: its stage's hashed settings, whether it resumes, and the work."""

    settings: dict[str, Any]
    setting_defaults: dict[str, Any]
    resumable: bool
    run: Callable[[StageContext], dict[str, Any]]
    title: str


def train_plan(name: str, model: LanguageModelSection, lms: LanguageModelsSection, source: str,
               train_text: Path, tokenizer: Path, train_dir: Path, seed: int) -> TrainPlan:
    """The plan of model `name` of `[language_models]` (its config checked; nothing is read)."""
    budget = model.budget or lms.budget
    if model.kind == "ngram":
        config = build_config(NgramConfig, model.settings, {"tokenizer": os.fspath(tokenizer),
                                                            "input_format": _TEXT_FORMAT}, source)
        try:
            check_config(config)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e.message}") from None
        return TrainPlan(**stage_settings(config, ("tokenizer",)), resumable=False,
                         run=_ngram_run(config, train_text), title=f"{name}: count a {config.order}-gram model "
                         f"({config.smoothing}) of the word pieces")
    defaults: dict[str, Any] = {"trainer.seed": seed, "trainer.progress": False}
    if budget:
        defaults["trainer.max_time"] = budget
    if model.kind in ("lstm", "gru"):
        injected = {"input": [os.fspath(train_text)], "tokenizer": os.fspath(tokenizer), "cell": model.kind,
                    "input_format": _TEXT_FORMAT, "out": os.fspath(train_dir),
                    "trainer.output_dir": os.fspath(train_dir)}
        rnn: RNNTrainConfig = build_config(RNNTrainConfig, model.settings, injected, source, defaults)
        return TrainPlan(**stage_settings(rnn, _RNN_PATHS), resumable=True, run=_rnn_run(rnn),
                         title=f"{name}: train the {model.kind.upper()} language model")
    injected = {"objective": "clm", "data": os.fspath(train_dir / SHARDS), "trainer.output_dir": os.fspath(train_dir)}
    gpt: PretrainConfig = build_config(PretrainConfig, model.settings, injected, source, defaults)
    prepare = PrepareConfig(format=_TEXT_FORMAT, splitter="lines", valid_fraction=_GPT_HELD_OUT, seed=seed,
                            progress=False)
    return TrainPlan(**stage_settings(gpt, _GPT_PATHS, shards={"valid_fraction": _GPT_HELD_OUT}), resumable=True,
                     run=_gpt_run(gpt, prepare, train_text, tokenizer), title=f"{name}: train the GPT language model")


def _ngram_run(config: NgramConfig, train_text: Path) -> Callable[[StageContext], dict[str, Any]]:
    def run(ctx: StageContext) -> dict[str, Any]:
        loaded = train_ngram(train_text, config, out_dir=ctx.dir)
        training = loaded.config["training"]
        seconds = float(training["seconds"])
        ngrams = [int(n) for n in training["ngrams"]]
        return {"kind": "ngram", "order": config.order, "smoothing": config.smoothing,
                "vocab_size": loaded.config["vocab_size"], "ngrams": ngrams,
                # An n-gram model's numbers: a probability and a back-off weight per listed n-gram.
                "parameters": 2 * sum(ngrams), "train_tokens": int(training["tokens"]), "train_seconds": seconds,
                "tokens_per_s": round(training["tokens"] / seconds, 1) if seconds > 0 else None,
                "stopped": "counted"}
    return run


def _rnn_run(config: RNNTrainConfig) -> Callable[[StageContext], dict[str, Any]]:
    def run(ctx: StageContext) -> dict[str, Any]:
        result = train_rnn(config, resume=ctx.resume)
        stop_if_interrupted(result, ctx.stage.key)
        facts = json.loads((ctx.dir / "rnn_config.json").read_text(encoding="utf-8"))
        return {"kind": config.cell, **trainer_summary(result), "train_seconds": result.elapsed,
                "parameters": facts["parameters"], "train_tokens": facts["train_tokens"],
                "tokens_per_s": mean_tokens_per_s(ctx.dir / TRAINER_METRICS)}
    return run


def _gpt_run(config: PretrainConfig, prepare: PrepareConfig, train_text: Path,
             tokenizer: Path) -> Callable[[StageContext], dict[str, Any]]:
    def run(ctx: StageContext) -> dict[str, Any]:
        shards = ctx.dir / SHARDS
        if not (ctx.resume and (shards / "meta.json").is_file()):  # a resumed run trains on the same shards
            prepare_data([train_text], tokenizer, shards, prepare)
        result = pretrain(config, resume=ctx.resume)
        stop_if_interrupted(result, ctx.stage.key)
        meta = json.loads((shards / "meta.json").read_text(encoding="utf-8"))
        model = load_model(ctx.dir / FINAL)
        return {"kind": "gpt", **trainer_summary(result), "train_seconds": result.elapsed,
                "parameters": sum(p.numel() for p in model.parameters()),
                "train_tokens": _shard_tokens(meta), "tokens_per_s": mean_tokens_per_s(ctx.dir / TRAINER_METRICS)}
    return run


def _shard_tokens(meta: dict[str, Any]) -> int | None:
    train = (meta.get("splits") or {}).get("train") or {}
    tokens = train.get("tokens")
    return int(tokens) if isinstance(tokens, (int, float)) else None
