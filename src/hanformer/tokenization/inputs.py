"""What callers hand the tokenizer, checked (texts, pairs, word lists, token ids), and the model
inputs `Tokenizer.__call__` hands back as lists, NumPy arrays or torch tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from hanformer.errors import ConfigError, InputError
from hanformer.tokenization.alignment import TextInput
from hanformer.tokenization.encoding import Encoding


def check_text(text: Any, split: bool, name: str) -> None:
    """A string, or with `split` (is_split_into_words) a list of strings; `name` says which argument."""
    if split:
        if isinstance(text, str) or not all(isinstance(w, str) for w in text):
            raise InputError(f"{name}: with is_split_into_words=True give a list of words (strings)")
    elif not isinstance(text, str):
        raise InputError(f"{name}: expected a string, got {type(text).__name__}")


def batch_inputs(texts: Sequence[TextInput], pairs: Sequence[TextInput] | None, split: bool) -> list[Any]:
    """The engine's batch input: the texts, or (text, pair) tuples, each one checked."""
    if isinstance(texts, str):
        raise InputError("encode_batch expects a list of texts, got one string (use encode for a single text)")
    for i, t in enumerate(texts):
        check_text(t, split, f"texts[{i}]")
    if pairs is None:
        return list(texts)
    if len(pairs) != len(texts):
        raise InputError(f"got {len(texts)} texts but {len(pairs)} pairs; give one pair per text")
    for i, p in enumerate(pairs):
        check_text(p, split, f"pairs[{i}]")
    return list(zip(texts, pairs, strict=True))


def as_id_list(ids: Any) -> list[int]:
    """Token ids given as a list, a tensor/array, one int or an Encoding, as a list of ints."""
    if isinstance(ids, Encoding):
        return list(ids.ids)
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    return [int(i) for i in ids]


def as_tensors(out: dict[str, Any], return_tensors: Literal["pt", "np"] | None) -> dict[str, Any]:
    """`out` (name -> rows of ids) as lists (None), NumPy int64 arrays ("np") or torch tensors ("pt")."""
    if return_tensors is None:
        return out
    if len({len(ids) for ids in out["input_ids"]}) > 1:
        raise ConfigError("texts encode to different lengths: pass padding='longest' (or 'max_length') "
                          "to get tensors, or return_tensors=None for lists")
    # Loaded on first use: plain encoding (data preparation, the CLI) needs neither.
    import numpy as np

    arrays = {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
    if return_tensors == "np":
        return arrays
    if return_tensors != "pt":
        raise ConfigError(f"return_tensors={return_tensors!r} is not supported: use 'pt', 'np' or None")
    import torch

    return {k: torch.from_numpy(v) for k, v in arrays.items()}
