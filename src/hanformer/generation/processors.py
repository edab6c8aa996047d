"""Logits processors: reshape the next-token scores before a token is chosen.

Each processor is a callable `(input_ids, scores) -> scores` on a batch: `input_ids` is
`(batch, length)` (the prompt, left padding included, plus what was generated so far) and `scores`
is `(batch, vocab)`. They implement the same arithmetic as `transformers`' processors of the same
name, in the same order, so decoding with equal settings picks equal tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from hanformer.generation.config import GenerationConfig

Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class RepetitionPenalty:
    """CTRL's penalty (Keskar et al., 2019): make every token already in the text less likely.

    A seen token's score is divided by `penalty` when positive and multiplied when negative, so
    it always moves down. Left padding is not "seen": `pad_lengths[b]` leading positions of row b
    are ignored.
    """

    def __init__(self, penalty: float, pad_lengths: torch.Tensor | None = None) -> None:
        self.penalty = penalty
        self.pad_lengths = pad_lengths

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        vocab_size = scores.shape[-1]
        if self.pad_lengths is not None:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            # Padding is sent to an extra column that is dropped at the end.
            input_ids = input_ids.masked_fill(positions[None, :] < self.pad_lengths[:, None], vocab_size)
        input_ids = input_ids.clamp(max=vocab_size)
        padded = torch.nn.functional.pad(scores, (0, 1))
        seen = torch.gather(padded, 1, input_ids)
        seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return padded.scatter(1, input_ids, seen)[..., :vocab_size]


class NoRepeatNGram:
    """Forbid any token that would complete an n-gram already present in the sequence."""

    def __init__(self, ngram_size: int) -> None:
        self.n = ngram_size

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[-1]
        if length < self.n:
            return scores
        # The last n-1 tokens are the prefix of the n-gram being completed; every earlier window
        # whose first n-1 tokens equal it bans its last token.
        prefix = input_ids[:, length + 1 - self.n:]
        windows = input_ids.unfold(dimension=1, size=self.n, step=1)
        matches = (windows[..., :-1] == prefix.unsqueeze(1)).all(dim=-1)
        vocab_size = scores.shape[-1]
        banned = scores.new_zeros((scores.shape[0], vocab_size + 1), dtype=torch.bool)
        banned.scatter_(1, torch.where(matches, windows[..., -1].clamp(max=vocab_size), vocab_size), True)
        return scores.masked_fill(banned[:, :vocab_size], -float("inf"))


class Temperature:
    """Divide scores by T: T < 1 sharpens the distribution, T > 1 flattens it."""

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores / self.temperature


class TopK:
    """Keep the k highest scores (ties with the k-th are kept), set the rest to -inf."""

    def __init__(self, top_k: int, min_tokens_to_keep: int = 1) -> None:
        self.top_k = max(top_k, min_tokens_to_keep)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        k = min(self.top_k, scores.shape[-1])
        kth = torch.topk(scores, k)[0][..., -1, None]
        return scores.masked_fill(scores < kth, -float("inf"))


class TopP:
    """Nucleus sampling (Holtzman et al., 2020): keep the most likely tokens whose probabilities sum to top_p.

    Tokens are sorted ascending and those whose cumulative probability stays <= 1 - top_p are
    removed, so the token that crosses the threshold is kept.
    """

    def __init__(self, top_p: float, min_tokens_to_keep: int = 1) -> None:
        self.top_p = top_p
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        sorted_scores, sorted_indices = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - self.top_p)
        remove_sorted[..., -self.min_tokens_to_keep:] = False
        remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
        return scores.masked_fill(remove, -float("inf"))


def build_processors(config: GenerationConfig, pad_lengths: torch.Tensor | None = None) -> list[Processor]:
    """The processors `config` asks for, in `transformers`' order (penalties first, then sampling warpers).

    Temperature, top-k and top-p only shape a distribution that is sampled from, so they apply
    only with `do_sample` (as in `transformers`): greedy and beam search ignore them.
    """
    processors: list[Processor] = []
    if config.repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(config.repetition_penalty, pad_lengths))
    if config.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGram(config.no_repeat_ngram_size))
    if config.do_sample:
        if config.temperature != 1.0:
            processors.append(Temperature(config.temperature))
        if config.top_k > 0:
            processors.append(TopK(config.top_k))
        if config.top_p < 1.0:
            processors.append(TopP(config.top_p))
    return processors


def apply_processors(processors: Sequence[Processor], input_ids: torch.Tensor,
                     scores: torch.Tensor) -> torch.Tensor:
    for processor in processors:
        scores = processor(input_ids, scores)
    return scores
