"""Training batches for translation: sentence pairs grouped by length, sized by a token budget.

As in the paper ("each training batch contained a set of sentence pairs containing
approximately 25000 source tokens and 25000 target tokens"), a batch is as many pairs as fit a
token budget, not a fixed number of sentences. Padding is what the budget counts: a batch of n
pairs whose longest source or target has L tokens costs n x L <= `max_tokens`. So that little of
that is padding, pairs of similar length go together (length bucketing): every epoch the pairs
are shuffled, cut into pools of `pool_size`, each pool is sorted by length and cut into batches,
and the batches of all pools are shuffled. Everything is a pure function of (seed, epoch), so a
batch source's state is (epoch, position) and a resumed run sees exactly the same batches.

Each pair becomes (teacher forcing):

    input_ids          source pieces + EOS                 (right-padded with PAD)
    decoder_input_ids  START + target pieces               (the decoder reads the target shifted right)
    labels             target pieces + EOS                 (PAD where padded: the loss skips it)

No decoder attention mask is passed: the padding sits after every real target token, which the
causal mask already hides from it, and without a mask attention keeps its fused causal kernel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hanformer.data.parallel import SentencePair
from hanformer.errors import CheckpointError, InputError
from hanformer.tokenization.tokenizer import Tokenizer

log = logging.getLogger("hanformer.translation")


@dataclass(frozen=True)
class SpecialIds:
    pad: int
    start: int
    eos: int


@dataclass
class EncodedPairs:
    sources: list[np.ndarray]
    """Source ids of each pair, EOS included."""
    targets: list[np.ndarray]
    """Target ids of each pair, EOS included (the labels)."""
    skipped: int
    """Pairs left out because one side was longer than `max_length`."""

    def __len__(self) -> int:
        return len(self.sources)

    def tokens(self) -> tuple[int, int]:
        """(source tokens, target tokens), EOS included."""
        return sum(len(s) for s in self.sources), sum(len(t) for t in self.targets)


def encode_pairs(pairs: Sequence[SentencePair], tokenizer: Tokenizer, eos: int, max_length: int,
                 what: str = "training") -> EncodedPairs:
    """Pieces + EOS of both sides. A pair with a side longer than `max_length` tokens is left out
    (with one warning for all): cutting it would teach the model to drop the end of a sentence."""
    sources: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    src_enc = tokenizer.encode_batch([p.source for p in pairs], add_special_tokens=False)
    tgt_enc = tokenizer.encode_batch([p.target for p in pairs], add_special_tokens=False)
    skipped = 0
    for s, t in zip(src_enc, tgt_enc, strict=True):
        if len(s.ids) + 1 > max_length or len(t.ids) + 1 > max_length:
            skipped += 1
            continue
        sources.append(np.array([*s.ids, eos], dtype=np.int64))
        targets.append(np.array([*t.ids, eos], dtype=np.int64))
    if skipped:
        log.warning("%d of %d %s pairs have a side longer than %d tokens and are left out (raise "
                    "--max-length to keep them)", skipped, len(pairs), what, max_length)
    if not sources:
        raise InputError(f"every {what} pair has a side longer than {max_length} tokens; raise --max-length")
    return EncodedPairs(sources, targets, skipped)


def collate(sources: Sequence[np.ndarray], targets: Sequence[np.ndarray], ids: SpecialIds) -> dict[str, torch.Tensor]:
    """Right-padded tensors of a list of pairs (see the module docstring)."""
    n = len(sources)
    src_len = max(len(s) for s in sources)
    tgt_len = max(len(t) for t in targets)
    input_ids = np.full((n, src_len), ids.pad, dtype=np.int64)
    attention_mask = np.zeros((n, src_len), dtype=np.int64)
    decoder_input_ids = np.full((n, tgt_len), ids.pad, dtype=np.int64)
    labels = np.full((n, tgt_len), ids.pad, dtype=np.int64)
    for i, (s, t) in enumerate(zip(sources, targets, strict=True)):
        input_ids[i, :len(s)] = s
        attention_mask[i, :len(s)] = 1
        decoder_input_ids[i, 0] = ids.start
        decoder_input_ids[i, 1:len(t)] = t[:-1]
        labels[i, :len(t)] = t
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask),
            "decoder_input_ids": torch.from_numpy(decoder_input_ids), "labels": torch.from_numpy(labels)}


def plan_batches(lengths: np.ndarray, max_tokens: int, pool_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch as arrays of pair indices. `lengths`: max(source, target) tokens
    of each pair. Every batch satisfies len(batch) x max(lengths[batch]) <= max_tokens."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool_size):
        pool = order[start:start + pool_size]
        pool = pool[np.argsort(lengths[pool], kind="stable")]  # stable: ties keep the shuffled order
        first = 0
        longest = 0
        for k, i in enumerate(pool):
            longest_with = max(longest, int(lengths[i]))
            if (k - first + 1) * longest_with > max_tokens:
                batches.append(pool[first:k])
                first, longest_with = k, int(lengths[i])
            longest = longest_with
        batches.append(pool[first:])
    rng.shuffle(batches)  # a list of arrays: shuffled in place, as a MutableSequence
    return batches


class TokenBatches:
    """The trainer's batch source over encoded pairs (see the module docstring).

    With several processes, rank r takes batches r, r+W, r+2W, ... of each epoch's plan (the
    plan's tail that does not fill a round of W is left out, so every rank takes as many steps).
    """

    def __init__(self, pairs: EncodedPairs, ids: SpecialIds, *, max_tokens: int, pool_size: int = 2048,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.pairs = pairs
        self.ids = ids
        self.lengths = np.array([max(len(s), len(t)) for s, t in zip(pairs.sources, pairs.targets, strict=True)],
                                dtype=np.int64)
        longest = int(self.lengths.max())
        if max_tokens < longest:
            raise InputError(f"--max-tokens {max_tokens} is smaller than the longest training sentence "
                             f"({longest} tokens); raise it to at least {longest}")
        if pool_size < 1:
            raise InputError(f"pool size must be >= 1, got {pool_size}")
        self.max_tokens, self.pool_size, self.seed = max_tokens, pool_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.position = 0  # batches of this epoch's plan handed out, over all ranks
        self._plan: list[np.ndarray] | None = None
        self._plan_epoch = -1
        if self.batches_in(0) == 0:
            raise InputError(f"the training pairs make fewer batches than the {world_size} processes; add pairs "
                             "or lower --max-tokens")

    def plan(self, epoch: int) -> list[np.ndarray]:
        if self._plan_epoch != epoch:
            self._plan = plan_batches(self.lengths, self.max_tokens, self.pool_size, self.seed, epoch)
            self._plan_epoch = epoch
        assert self._plan is not None
        return self._plan

    def batches_in(self, epoch: int) -> int:
        """Batches of `epoch`, over all ranks (a multiple of world_size)."""
        return len(self.plan(epoch)) // self.world_size * self.world_size

    def next_batch(self) -> dict[str, torch.Tensor]:
        if self.position >= self.batches_in(self.epoch):
            self.epoch += 1
            self.position = 0
        rows = self.plan(self.epoch)[self.position + self.rank]
        self.position += self.world_size
        return collate([self.pairs.sources[i] for i in rows], [self.pairs.targets[i] for i in rows], self.ids)

    def _fingerprint(self) -> dict[str, int]:
        src, tgt = self.pairs.tokens()
        return {"pairs": len(self.pairs), "source_tokens": src, "target_tokens": tgt,
                "max_tokens": self.max_tokens, "pool_size": self.pool_size, "seed": self.seed,
                "world_size": self.world_size}

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, **self._fingerprint()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self._fingerprint()
        theirs = {k: state.get(k) for k in mine}
        if theirs != mine:
            differ = ", ".join(f"{k} {theirs[k]} -> {mine[k]}" for k in mine if theirs[k] != mine[k])
            raise CheckpointError(f"the checkpoint's batches were made from other pairs or settings ({differ}); "
                                  "resume with the same files, vocabulary, --max-tokens and processes")
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
