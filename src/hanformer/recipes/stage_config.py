"""A stage table's component config, checked as far as the stage will read it before any stage
runs: the config's own checks, its seeds, and the model preset pretraining will build."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from hanformer.errors import ConfigError
from hanformer.models.bert.config import PRESETS as BERT_PRESETS
from hanformer.models.bert.config import BertConfig
from hanformer.models.gpt.config import PRESETS as GPT_PRESETS
from hanformer.models.gpt.config import GPTConfig
from hanformer.pretraining.config import GPT_PRESET_ALIASES
from hanformer.training.config import check_seed
from hanformer.utils.config import load_config

T = TypeVar("T")


def parse_stage_config(cls: type[T], data: dict[str, Any], source: str) -> T:
    """A stage's component config (`cls`) from its recipe table, checked as far as the stage will
    read it: the config's own checks, plus values it only parses when it runs (seeds; the model
    preset and `model_config` of pretraining). Every error names the recipe file and table
    (`source`) and the key, so `hanformer run --dry-run` reports it before any stage works."""
    try:
        config = load_config(cls, data, source)
        _check_seeds(config)
        _check_model_settings(config)
    except ConfigError as e:
        raise ConfigError(e.message if e.message.startswith(source) else f"{source}: {e.message}") from None
    return config


def _check_seeds(config: Any) -> None:
    """Every seed of a config and of its nested configs (`trainer.seed`) is one the stage's
    random generators accept: components that do not check their seeds fail only when seeding."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            _check_seeds(value)
        elif f.name == "seeds" and isinstance(value, list):
            for seed in value:
                check_seed(seed, f.name)
        elif (f.name == "seed" or f.name.endswith("_seed")) and isinstance(value, int):
            check_seed(value, f.name)


def _check_model_settings(config: Any) -> None:
    """Build the model config pretraining will build from `model` (a preset) and `model_config`
    (overrides), as far as it is known before the data exists (the vocabulary size is not)."""
    if not hasattr(config, "model_config"):
        return
    overrides = config.model_config
    if not isinstance(overrides, dict):
        raise ConfigError(f"model_config = {overrides!r}: must be a table of model settings with "
                          "config.json names, e.g. model_config = { hidden_size = 256 }")
    if getattr(config, "init_from", None):
        return  # the model comes from that checkpoint, with its own config
    if getattr(config, "objective", None) == "clm":
        preset = GPT_PRESET_ALIASES.get(config.model, config.model)
        presets: dict[str, Any] = GPT_PRESETS
        build: Callable[..., Any] = GPTConfig.preset
    else:
        preset, presets, build = config.model, BERT_PRESETS, BertConfig.preset
    if preset not in presets:
        raise ConfigError(f"model = {config.model!r}: not a model size; choose one of {', '.join(presets)}")
    try:
        build(preset, **overrides)
    except (ConfigError, TypeError) as e:
        raise ConfigError(f"model_config: {getattr(e, 'message', e)}") from None
