"""Masked-LM masking at batch time, so every epoch sees fresh masks.

Per sequence, `round(mask_prob x maskable tokens)` positions are chosen (at least one; at most
`max_predictions` when set), as the original BERT does, rather than an independent coin per
token: every sequence then carries the same share of the training signal. Special tokens
([CLS], [SEP], [PAD], [MASK], [UNK]) are never chosen. Of the chosen positions 80% become
[MASK], 10% a random ordinary token and 10% stay unchanged (the model cannot tell which
inputs to trust, so it must represent every token well). With whole-word masking, the pieces of
a word - for Korean all pieces of an eojeol - are chosen together: words are visited in random
order and a word is taken if it still fits in the budget.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hanformer.utils.labels import IGNORE_INDEX


@dataclasses.dataclass(frozen=True)
class MaskingSpec:
    mask_prob: float = 0.15
    mask_token_prob: float = 0.8     # of the chosen positions: replaced by [MASK]
    random_token_prob: float = 0.1   # ... by a random ordinary token (the rest stay unchanged)
    max_predictions: int = 0         # 0: no cap
    whole_word: bool = False


class Masker:
    """Applies a MaskingSpec to (batch, length) id arrays with a caller-supplied Generator."""

    def __init__(self, spec: MaskingSpec, vocab_size: int, mask_id: int, special_ids: list[int]) -> None:
        self.spec = spec
        self.mask_id = mask_id
        self.special = np.zeros(vocab_size, dtype=bool)
        self.special[[i for i in special_ids if 0 <= i < vocab_size]] = True
        # Random replacements come from ordinary tokens only (never [CLS]/[PAD]/...).
        self.random_pool = np.flatnonzero(~self.special)

    def __call__(self, input_ids: np.ndarray, rng: np.random.Generator,
                 word_starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (masked input ids, labels with the original id at chosen positions, -100 elsewhere).

        word_starts (bool, same shape) marks the first piece of each word; it is used only with
        whole-word masking. A maskable token right after an unmaskable one always starts a word.
        """
        spec = self.spec
        ids = np.array(input_ids, dtype=np.int64, copy=True)
        labels = np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
        maskable = ~self.special[ids]
        chosen_rows, chosen_cols = [], []
        for r in range(ids.shape[0]):
            cand = np.flatnonzero(maskable[r])
            n = len(cand)
            if n == 0:
                continue
            k = max(1, int(round(n * spec.mask_prob)))
            if spec.max_predictions:
                k = min(k, spec.max_predictions)
            if spec.whole_word and word_starts is not None:
                starts = word_starts[r, cand].astype(bool)
                starts[0] = True
                starts[1:] |= np.diff(cand) != 1  # a gap (special token) always breaks a word
                group = np.cumsum(starts) - 1
                sizes = np.bincount(group)
                picked = np.zeros(len(sizes), dtype=bool)
                total = 0
                for g in rng.permutation(len(sizes)):
                    if total >= k:
                        break
                    if total + sizes[g] > k:
                        continue
                    picked[g] = True
                    total += sizes[g]
                cols = cand[picked[group]]
            else:
                cols = rng.choice(cand, size=min(k, n), replace=False)
            chosen_rows.append(np.full(len(cols), r))
            chosen_cols.append(cols)
        if not chosen_rows:
            return ids, labels
        rows = np.concatenate(chosen_rows)
        cols = np.concatenate(chosen_cols)
        labels[rows, cols] = ids[rows, cols]
        u = rng.random(len(rows))
        to_mask = u < spec.mask_token_prob
        to_random = (u >= spec.mask_token_prob) & (u < spec.mask_token_prob + spec.random_token_prob)
        ids[rows[to_mask], cols[to_mask]] = self.mask_id
        n_rand = int(to_random.sum())
        if n_rand:
            ids[rows[to_random], cols[to_random]] = self.random_pool[rng.integers(0, len(self.random_pool), n_rand)]
        return ids, labels
