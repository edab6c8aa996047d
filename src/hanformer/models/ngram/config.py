"""Settings of an n-gram model (light: the CLI reads them to build its --help)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hanformer.errors import ConfigError
from hanformer.utils.config import setting
from hanformer.utils.corpus import FORMATS

MAX_ORDER = 5
SMOOTHINGS = ("kn", "absolute", "addk")
DEFAULT_K = 0.5


@dataclass
class NgramConfig:
    order: int = setting(3, "n-gram order, 1 to 5")
    smoothing: Literal["kn", "absolute", "addk"] = setting(
        "kn", "kn: interpolated modified Kneser-Ney; absolute: interpolated absolute discounting; addk: add-k")
    k: float | None = setting(None, "add-k's k, > 0 (addk only)")
    discount: float | None = setting(None, "absolute discounting's D in (0, 1] (absolute only)")
    tokenizer: str | None = setting(None, "count the word pieces of this tokenizer folder")
    input_format: str = setting("auto", "format of the text files: auto, text, wiki, jsonl, tsv")


# What --help shows as the default of the settings whose None is decided later.
HELP_DEFAULTS = {"k": DEFAULT_K, "discount": "n1 / (n1 + 2 n2) per order", "tokenizer": "whitespace words"}


def check_config(config: NgramConfig) -> None:
    """Refuse impossible settings before any text is read."""
    if not 1 <= config.order <= MAX_ORDER:
        raise ConfigError(f"--order {config.order}: orders 1 to {MAX_ORDER} are supported")
    if config.smoothing not in SMOOTHINGS:
        raise ConfigError(f"--smoothing {config.smoothing!r}: use one of {', '.join(SMOOTHINGS)}")
    if config.k is not None:
        if config.smoothing != "addk":
            raise ConfigError(f"--k is add-k's constant; it has no meaning with --smoothing {config.smoothing}")
        if not config.k > 0:
            raise ConfigError(f"--k {config.k}: must be greater than 0 (k = 1 is Laplace smoothing)")
    if config.discount is not None:
        if config.smoothing != "absolute":
            raise ConfigError(f"--discount is absolute discounting's D; with --smoothing {config.smoothing} "
                              "the discounts come from the counts")
        if not 0 < config.discount <= 1:
            raise ConfigError(f"--discount {config.discount}: must be in (0, 1]")
    if config.input_format not in FORMATS:
        raise ConfigError(f"--input-format {config.input_format!r}: use one of {', '.join(FORMATS)}")
