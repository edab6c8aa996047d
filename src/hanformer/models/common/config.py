"""What every model config shares: the size presets, value checks that name the field and the
fix, Hugging Face field handling, and the base of configs kept in hanformer's own layout.

BertConfig, GPTConfig and the encoder-decoder configs are built from these pieces, so a bad
value reads the same way whichever family it belongs to.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

from hanformer.errors import ConfigError
from hanformer.utils.config import load_config, load_json_object
from hanformer.utils.files import atomic_write_json

C = TypeVar("C")

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish", "tanh")

# name -> (layers, hidden, heads); the intermediate size is always 4 x hidden. BERT and GPT
# read the same table, so the objectives can be compared at equal size.
SIZE_PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 128, 2),
    "mini": (4, 256, 4),
    "small": (4, 512, 8),
    "medium": (8, 512, 8),
    "base": (12, 768, 12),
    "large": (24, 1024, 16),
}


# --- value checks shared by every model config (BertConfig, GPTConfig) -----------------------
# They raise "<ClassName>: <key> ..." and `load_model_config` puts the file name in its place.

def _fail(config: Any, message: str) -> NoReturn:
    raise ConfigError(f"{type(config).__name__}: {message}")


def require_positive_ints(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            _fail(config, f"{name} must be a positive integer, got {value!r}")


def require_probabilities(config: Any, names: tuple[str, ...]) -> None:
    """Dropout rates: in [0, 1) (1 would drop everything); None means 'not set'."""
    for name in names:
        value = getattr(config, name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
            _fail(config, f"{name} must be in [0, 1), got {value!r}")


def require_positive_numbers(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 < value < math.inf:
            _fail(config, f"{name} must be a positive number, got {value!r}")


def require_choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in choices:
        _fail(config, f"{name} {value!r} is not one of {', '.join(choices)}")


def require_token_ids(config: Any, names: tuple[str, ...]) -> None:
    """Special token ids (None = not set) must be rows of the embedding matrix."""
    for name in names:
        value = getattr(config, name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < config.vocab_size:
            _fail(config, f"{name} {value!r} is outside the vocabulary (size {config.vocab_size})")


def load_model_config(cls: type[C], data: dict[str, Any], source: str) -> C:
    """`load_config` for model configs: a value check names the file it came from, not the class."""
    try:
        return load_config(cls, data, source)
    except ConfigError as e:
        prefix = f"{cls.__name__}: "
        if e.message.startswith(prefix):
            raise ConfigError(f"{source}: {e.message[len(prefix):]}") from None
        raise


OwnConfig = TypeVar("OwnConfig", bound="OwnLayoutConfig")


class OwnLayoutConfig:
    """What the configs of families stored in hanformer's own layout share (no transformers
    class reads them): config.json holds `model_type`, `architectures` and the dataclass fields.
    A subclass (a dataclass) names its `model_type`, its one `architecture` and what the family
    is called in errors (`described_as`)."""

    model_type: ClassVar[str]
    architecture: ClassVar[str]
    described_as: ClassVar[str]

    @classmethod
    def from_dict(cls: type[OwnConfig], data: dict[str, Any], source: str = "config") -> OwnConfig:
        data = dict(data)
        model_type = data.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ConfigError(f"{source}: model_type {model_type!r} is not {cls.described_as} "
                              f"(expected {cls.model_type!r})")
        data.pop("architectures", None)
        return load_model_config(cls, data, source)

    @classmethod
    def from_pretrained(cls: type[OwnConfig], directory: str | Path) -> OwnConfig:
        path = Path(directory) / "config.json"
        return cls.from_dict(load_json_object(path), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": self.model_type, "architectures": [self.architecture],
                **dataclasses.asdict(self)}  # type: ignore[call-overload]

    def save_pretrained(self, directory: str | Path) -> None:
        atomic_write_json(Path(directory) / "config.json", self.to_dict())


def take_hf_fields(data: dict[str, Any], source: str, *, required: dict[str, Any],
                   ignored: set[str] | frozenset[str], strict: bool) -> None:
    """Fit a Hugging Face config.json's fields to a hanformer config, in place: a field whose
    only supported value is given (`required`) is refused with any other value and dropped with
    it; unless `strict`, the fields transformers writes that mean nothing here (`ignored`) go."""
    for key, only in required.items():
        if key in data and (value := data.pop(key)) != only:
            raise ConfigError(f"{source}: {key} = {value!r} is not supported (only {only!r})")
    if not strict:
        for key in ignored & data.keys():
            del data[key]


def block_parameters(hidden: int, intermediate: int) -> int:
    """Parameters of one `TransformerBlock`: fused Q/K/V + output projection, feed-forward, two LayerNorms."""
    return 4 * hidden * hidden + 2 * hidden * intermediate + 9 * hidden + intermediate
