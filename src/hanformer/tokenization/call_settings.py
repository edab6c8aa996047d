"""Per-call truncation and padding: the option values `transformers` accepts, checked, and the
engine settings that hold them for exactly one call.

The engine keeps truncation/padding as state, so each call sets them and resets them afterwards
(the `Tokenizer` holds its lock around both); nothing one call asks for leaks into the next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Literal, TypeVar

import tokenizers

from hanformer.errors import ConfigError

Truncation = bool | Literal["longest_first", "only_first", "only_second", "do_not_truncate"] | None
Padding = bool | Literal["longest", "max_length", "do_not_pad"] | None

_STRATEGIES: dict[object, str | None] = {
    True: "longest_first", "longest_first": "longest_first", "only_first": "only_first",
    "only_second": "only_second", False: None, None: None, "do_not_truncate": None}
_PAD_MODES: dict[object, str | None] = {
    True: "longest", "longest": "longest", "max_length": "max_length", False: None, None: None, "do_not_pad": None}

Result = TypeVar("Result")


def truncation_strategy(truncation: Truncation) -> str | None:
    """The engine's strategy for `truncation`; None: no truncation."""
    strategy = _STRATEGIES.get(truncation, "?")
    if strategy == "?":
        raise ConfigError(f"truncation={truncation!r}: use True/'longest_first', 'only_first', 'only_second' or False")
    return strategy


def padding_mode(padding: Padding) -> str | None:
    """"longest" or "max_length" for `padding`; None: no padding."""
    pad_mode = _PAD_MODES.get(padding, "?")
    if pad_mode == "?":
        raise ConfigError(f"padding={padding!r}: use True/'longest', 'max_length' or False")
    return pad_mode


def check_length(length: int, strategy: str | None, pad_mode: str | None, specials: int, frame: str) -> None:
    """Refuse a truncation/padding length the call cannot honour. `specials`: how many special
    tokens each sequence gets, the least a truncation length can be; `frame` names them."""
    if strategy and length < specials:
        # The engine would silently give up truncating and return the whole text.
        raise ConfigError(
            f"max_length = {length} is too small: the special tokens ({frame}) "
            f"take {specials} positions, so the minimum is {specials} (only those tokens) and {specials + 1} "
            f"keeps text")
    if (strategy or pad_mode == "max_length") and length < 1:
        raise ConfigError(f"max_length = {length} must be at least 1")


@contextlib.contextmanager
def engine_settings(backend: tokenizers.Tokenizer, strategy: str | None, pad_mode: str | None, length: int,
                    stride: int, pad_to_multiple_of: int | None, pad_id: int | None,
                    pad_token: str | None) -> Iterator[None]:
    """Set `backend`'s truncation/padding for one call and always reset them afterwards."""
    try:
        if strategy:
            backend.enable_truncation(length, stride=stride, strategy=strategy)
        if pad_mode:
            if pad_id is None:
                raise ConfigError("padding needs a [PAD] token, and this vocabulary has none")
            backend.enable_padding(pad_id=pad_id, pad_token=pad_token, pad_type_id=0,
                                   length=length if pad_mode == "max_length" else None,
                                   pad_to_multiple_of=pad_to_multiple_of)
        yield
    finally:
        backend.no_truncation()
        backend.no_padding()


def run_engine(fn: Callable[[], Result]) -> Result:
    """`fn()`, with the engine's error for an impossible truncation turned into a ConfigError."""
    try:
        return fn()
    except Exception as e:  # the engine raises plain Exceptions for impossible requests
        msg = str(e)
        if "Truncation error" in msg:
            raise ConfigError(f"cannot truncate as asked: {msg} (raise max_length or change the strategy)") from None
        raise
