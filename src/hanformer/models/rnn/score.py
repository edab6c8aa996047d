"""Held-out scores of an RNN language model over a token stream, the recurrence carried throughout.

The definition is GPT's (`pretraining/clm.py`): the mean negative log-likelihood of every
predicted next token of the stream (separators included), perplexity = exp of it. GPT predicts
within rows of `seq_len` tokens, starting each row without context; here the stream is cut into
`streams` contiguous pieces scored side by side (for speed), each starting from a zero state and
carrying its state to its end, so every token but the first of each piece is predicted.
`streams=1` scores the whole stream as one text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hanformer.models.rnn.model import RNNLanguageModel
from hanformer.utils.labels import IGNORE_INDEX


@dataclass
class StreamScore:
    nll: float  # summed over predicted tokens, in nats
    correct: float  # predicted tokens whose most likely next token was right
    predicted: int
    unigram_nll: float = 0.0  # the same tokens under `unigram_logp`, when given

    @property
    def loss(self) -> float:
        return self.nll / max(self.predicted, 1)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 50.0))


def score_stream(model: RNNLanguageModel, ids: np.ndarray, *, streams: int = 1, window: int = 128,
                 unigram_logp: torch.Tensor | None = None) -> StreamScore:
    """Scores of `ids` (at least 2 tokens). Call under torch.no_grad() or inference_mode, in eval mode.
    `unigram_logp` (vocab,): log-probabilities of a unigram model, scored on the same tokens as the
    floor a model must beat to have learned anything from context."""
    device = model.device
    streams = max(1, min(streams, len(ids) // 2))
    length = -(-len(ids) // streams)
    padded = np.full(streams * length, -1, dtype=np.int64)
    padded[:len(ids)] = ids
    data = torch.from_numpy(padded.reshape(streams, length)).to(device)
    # The last piece may be shorter: its tail is padding, read as token 0 and never scored.
    inputs, targets = data[:, :-1].clamp(min=0), data[:, 1:].masked_fill(data[:, 1:] < 0, IGNORE_INDEX)
    state = None
    nll = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    scored = targets != IGNORE_INDEX
    predicted = int(scored.sum())
    unigram = 0.0
    if unigram_logp is not None:
        unigram = -float(unigram_logp.to(device).double()[targets[scored]].sum())
    for start in range(0, inputs.shape[1], window):
        x, y = inputs[:, start:start + window], targets[:, start:start + window]
        out = model(x, state=state)
        assert out.logits is not None and out.state is not None
        state = out.state
        logits = out.logits.float()
        nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE_INDEX,
                               reduction="sum").double()
        correct += ((logits.argmax(-1) == y) & (y != IGNORE_INDEX)).sum()
    return StreamScore(float(nll), float(correct), predicted, unigram)
