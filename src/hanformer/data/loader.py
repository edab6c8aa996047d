"""Resumable batch sources: the batch order is a pure function of (seed, epoch, position).

Because batch `i` of epoch `e` is always the same, a loader's whole state is two integers, a
resumed run sees exactly the batches it would have seen, and DDP ranks can take disjoint
slices of every global batch without talking to each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hanformer.errors import InputError


def epoch_permutation(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


class ResumableLoader:
    """Batches of `examples` (any sequence) through `collate(list_of_examples) -> dict of tensors`.

    Global batch `g` holds `batch_size * world_size` examples; rank `r` takes its `batch_size`
    slice of it, so N processes with batch B see the same examples as one process with batch
    N*B (or with batch B and N accumulation steps). Epochs wrap around forever; `epoch` and
    `batches_per_epoch` let callers evaluate per epoch. The last incomplete global batch of an
    epoch is dropped (all ranks must take the same number of steps).
    """

    def __init__(self, examples: Sequence[Any], collate: Callable[[list[Any]], dict[str, Any]],
                 batch_size: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}")
        self.examples = examples
        self.collate = collate
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.global_batch = batch_size * world_size
        self.batches_per_epoch = len(examples) // self.global_batch
        if self.batches_per_epoch == 0:
            raise InputError(f"only {len(examples)} examples, fewer than one global batch of "
                             f"{self.global_batch} (batch size {batch_size} x {world_size} processes); "
                             f"lower the batch size or add data")
        self.epoch = 0
        self.position = 0  # global batches consumed in this epoch
        self._order: np.ndarray | None = None
        self._order_epoch = -1

    def __len__(self) -> int:
        return self.batches_per_epoch

    def _perm(self) -> np.ndarray:
        if self._order_epoch != self.epoch:
            self._order = epoch_permutation(len(self.examples), self.seed, self.epoch, self.shuffle)
            self._order_epoch = self.epoch
        assert self._order is not None
        return self._order

    def next_batch(self) -> dict[str, Any]:
        if self.position >= self.batches_per_epoch:
            self.epoch += 1
            self.position = 0
        start = self.position * self.global_batch + self.rank * self.batch_size
        idx = self._perm()[start:start + self.batch_size]
        self.position += 1
        return self.collate([self.examples[int(i)] for i in idx])

    def __iter__(self):
        """One pass over the rest of the current epoch (for evaluation loops)."""
        while self.position < self.batches_per_epoch:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed,
                "examples": len(self.examples), "global_batch": self.global_batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("examples") not in (None, len(self.examples)):
            raise InputError(f"cannot resume: the checkpoint was trained on {state['examples']} "
                             f"examples but the data now has {len(self.examples)}")
        self.epoch, self.position, self.seed = int(state["epoch"]), int(state["position"]), int(state["seed"])
        saved_batch = int(state.get("global_batch", self.global_batch))
        if saved_batch != self.global_batch:  # resumed on another number of processes
            done = self.position * saved_batch
            if done % self.global_batch:
                raise InputError(f"cannot resume: the checkpoint stopped {done} examples into the epoch, "
                                 f"which is not a whole number of global batches of {self.global_batch}")
            self.position = done // self.global_batch
