"""Pretraining batches from token shards: deterministic per index, streamed with prefetching.

An *indexed batch builder* knows how many micro-batches an epoch has and builds micro-batch
`index` of `epoch` as a pure function of (seed, epoch, index) - instances, order and masks.
`BatchStream` turns one into the trainer's batch source: rank `r` of `W` takes micro-batches
r, r+W, r+2W, ..., a background thread builds the next few while the model trains, and the
resume state is just (epoch, position). Objectives plug in by providing a builder:
`NSPBatches` (masked LM + next sentence prediction) here; a causal-LM builder can pack the same
shards into contiguous sequences.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Protocol

import numpy as np
import torch

from hanformer.data.instances import create_instances
from hanformer.data.masking import IGNORE_INDEX, Masker
from hanformer.data.shards import ShardSplit
from hanformer.entities.marking import MarkerIds, entity_ids_from_markers
from hanformer.errors import InputError


class IndexedBatches(Protocol):
    def num_batches(self, epoch: int) -> int:
        """Micro-batches in `epoch` (over all ranks)."""
        ...

    def build(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        """Micro-batch `index` of `epoch`: always the same for the same arguments."""
        ...


class NSPBatches:
    """[CLS] A [SEP] B [SEP] pairs with NSP labels and fresh masked-LM masks.

    Batches are padded to their longest sequence (rounded up to a multiple of 8), not to
    `seq_len`: short-sequence instances then cost what they contain. With `entity_markers`
    (shards whose text has its entities marked), each batch also has the `entity_ids` of an
    entity-aware BERT: 1 for the tokens between [ENT] and [/ENT].
    """

    def __init__(self, split: ShardSplit, *, seq_len: int, batch_size: int, short_seq_prob: float,
                 masker: Masker, special_ids: dict[str, int], seed: int,
                 pad_to_multiple_of: int = 8, name: str = "train", entity_markers: MarkerIds | None = None) -> None:
        self.split = split
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.short_seq_prob = short_seq_prob
        self.masker = masker
        self.cls_id, self.sep_id, self.pad_id = special_ids["cls"], special_ids["sep"], special_ids["pad"]
        self.seed = seed
        self.multiple = pad_to_multiple_of
        self.name = name
        self.entity_markers = entity_markers
        self._cache: tuple[int, np.ndarray] | None = None
        self._lock = threading.Lock()

    def instances(self, epoch: int) -> np.ndarray:
        with self._lock:
            if self._cache is None or self._cache[0] != epoch:
                inst = create_instances(self.split, self.seq_len, self.short_seq_prob, self.seed, epoch)
                np.random.default_rng([self.seed, epoch, 1]).shuffle(inst)
                self._cache = (epoch, inst)
            return self._cache[1]

    def num_batches(self, epoch: int) -> int:
        return len(self.instances(epoch)) // self.batch_size

    def build(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        inst = self.instances(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        lengths = (inst[:, 1] - inst[:, 0]) + (inst[:, 3] - inst[:, 2]) + 3
        width = int(lengths.max())
        width = min(-(-width // self.multiple) * self.multiple, max(self.seq_len, width))
        n = len(inst)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)
        attn = np.zeros((n, width), dtype=np.int64)
        words = np.zeros((n, width), dtype=bool)
        tokens, starts = self.split.tokens, self.split.word_starts
        for r, (a0, a1, b0, b1, _) in enumerate(inst):
            la, lb = a1 - a0, b1 - b0
            ids[r, 0] = self.cls_id
            ids[r, 1:1 + la] = tokens[a0:a1]
            ids[r, 1 + la] = self.sep_id
            ids[r, 2 + la:2 + la + lb] = tokens[b0:b1]
            ids[r, 2 + la + lb] = self.sep_id
            types[r, 2 + la:3 + la + lb] = 1
            attn[r, :3 + la + lb] = 1
            words[r, 1:1 + la] = starts[a0:a1]
            words[r, 2 + la:2 + la + lb] = starts[b0:b1]
        rng = np.random.default_rng([self.seed, epoch, index, 2])
        masked, labels = self.masker(ids, rng, words)
        batch = {"input_ids": torch.from_numpy(masked), "token_type_ids": torch.from_numpy(types),
                 "attention_mask": torch.from_numpy(attn), "labels": torch.from_numpy(labels),
                 "next_sentence_label": torch.from_numpy(inst[:, 4].copy())}
        if self.entity_markers is not None:  # the markers are special tokens: never masked, so read them here
            entity_ids = entity_ids_from_markers(ids, self.entity_markers, (self.cls_id, self.sep_id, self.pad_id))
            batch["entity_ids"] = torch.from_numpy(entity_ids)
        return batch


def require_batches(builder: IndexedBatches, world_size: int, what: str) -> int:
    """Local batches per epoch; a clear error with counts when the data is too small."""
    n = builder.num_batches(0)
    local = n // world_size
    if local == 0:
        extra = ""
        split = getattr(builder, "split", None)
        if split is not None:
            extra = (f" (from {split.n_documents} documents, {split.n_sentences} sentences, "
                     f"{split.n_tokens} tokens)")
        bs = getattr(builder, "batch_size", "?")
        raise InputError(f"the {what} data gives {n} batches of {bs}{extra}, fewer than one per "
                         f"process ({world_size}); add text, or lower --batch-size or --seq-len")
    return local


class BatchStream:
    """The trainer's batch source over an IndexedBatches, with a prefetching thread."""

    def __init__(self, builder: IndexedBatches, *, rank: int = 0, world_size: int = 1, prefetch: int = 2,
                 what: str = "training") -> None:
        self.builder = builder
        self.rank = rank
        self.world_size = world_size
        self.prefetch = prefetch
        self.epoch = 0
        self.position = 0  # local micro-batches consumed in this epoch
        require_batches(builder, world_size, what)
        self._queue: queue.Queue | None = None
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def local_batches(self, epoch: int) -> int:
        return self.builder.num_batches(epoch) // self.world_size

    def _advance(self, epoch: int, position: int) -> tuple[int, int]:
        while position >= self.local_batches(epoch):
            epoch, position = epoch + 1, 0
        return epoch, position

    def _build(self, epoch: int, position: int) -> dict[str, torch.Tensor]:
        return self.builder.build(epoch, position * self.world_size + self.rank)

    def _producer(self, epoch: int, position: int, q: queue.Queue, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                epoch, position = self._advance(epoch, position)
                item = (epoch, position, self._build(epoch, position))
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                position += 1
        except BaseException as e:  # hand the error to the training thread
            q.put(e)

    def next_batch(self) -> dict[str, torch.Tensor]:
        self.epoch, self.position = self._advance(self.epoch, self.position)
        if self.prefetch <= 0:
            batch = self._build(self.epoch, self.position)
        else:
            if self._thread is None:
                self._queue = queue.Queue(maxsize=self.prefetch)
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._producer, daemon=True,
                                                args=(self.epoch, self.position, self._queue, self._stop))
                self._thread.start()
            assert self._queue is not None
            item = self._queue.get()
            if isinstance(item, BaseException):
                self.close()
                raise item
            epoch, position, batch = item
            assert (epoch, position) == (self.epoch, self.position), "prefetch out of step"
        self.position += 1
        return batch

    def close(self) -> None:
        if self._thread is not None:
            assert self._stop is not None
            self._stop.set()
            self._thread.join(timeout=5)
        self._thread = self._queue = self._stop = None

    def state_dict(self) -> dict[str, Any]:
        # Global micro-batches consumed: valid for a resume with another number of processes.
        return {"epoch": self.epoch, "global_position": self.position * self.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.close()
        self.epoch = int(state["epoch"])
        self.position = int(state["global_position"]) // self.world_size


def iter_eval_batches(builder: IndexedBatches, max_batches: int):
    """The first `max_batches` batches of epoch 0: a fixed evaluation set (same masks each time)."""
    n = builder.num_batches(0)
    for i in range(min(n, max_batches) if max_batches else n):
        yield builder.build(0, i)


__all__ = ["BatchStream", "IGNORE_INDEX", "IndexedBatches", "NSPBatches", "iter_eval_batches", "require_batches"]
