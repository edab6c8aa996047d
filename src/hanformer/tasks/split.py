"""Deterministic, seeded validation carve.

The shared data sets ship training files only; we score on a validation part carved from them.
The carve depends only on (number of examples, fraction, seed, groups), so every run, every
machine and every user gets the same split. With `group`, examples that share a key (the
same KorQuAD context, the same KLUE-NLI premise) land on the same side, so the validation
part never contains a paragraph or premise seen in training.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from hanformer.errors import ConfigError

E = TypeVar("E")


def carve_validation(examples: Sequence[E], fraction: float = 0.1, seed: int = 42,
                     group: Callable[[E], Hashable] | None = None) -> tuple[list[E], list[E]]:
    """Split into (train, valid); about `fraction` of the examples (or groups) go to valid.

    Order inside each part follows the input order.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"valid_fraction must be between 0 and 1 (exclusive), got {fraction}")
    keys = [group(e) if group else i for i, e in enumerate(examples)]
    unique = list(dict.fromkeys(keys))  # first-seen order: stable regardless of hashing
    if len(unique) < 2:
        raise ConfigError(f"cannot carve a validation part from {len(unique)} example group(s); "
                          "give a separate --valid file")
    order = list(range(len(unique)))
    random.Random(seed).shuffle(order)
    n_valid = min(len(unique) - 1, max(1, round(fraction * len(unique))))
    valid_keys = {unique[i] for i in order[:n_valid]}
    train = [e for e, k in zip(examples, keys, strict=False) if k not in valid_keys]
    valid = [e for e, k in zip(examples, keys, strict=False) if k in valid_keys]
    return train, valid
