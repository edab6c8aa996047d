"""The recurrent encoder: source ids -> one vector per source token (the "memory")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hanformer.errors import InputError
from hanformer.models.common.dropout import Dropout
from hanformer.models.common.outputs import ModelOutput
from hanformer.models.seq2seq.config import RNNSeq2SeqConfig
from hanformer.models.seq2seq.recurrence import make_rnn, recur


@dataclass
class RNNEncoderOutput(ModelOutput):
    last_hidden_state: Tensor
    """(batch, source, memory_size); zeros on padding."""


def source_lengths(input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Real tokens per row of a right-padded source; an error for left padding or an empty row."""
    batch, width = input_ids.shape
    if attention_mask is None:
        return torch.full((batch,), width, dtype=torch.long, device=input_ids.device)
    lengths = attention_mask.long().sum(dim=1)
    if bool((lengths == 0).any()):
        raise InputError("a source row has no real token; every source needs at least its EOS")
    right_padded = torch.arange(width, device=attention_mask.device)[None, :] < lengths[:, None]
    if not torch.equal(attention_mask.bool(), right_padded):
        raise InputError("the source must be right-padded (attention_mask 1...1 0...0 in every row)")
    return lengths


def final_vectors(memory: Tensor, lengths: Tensor, bidirectional: bool) -> Tensor:
    """(batch, memory_size): what each direction read last, the forward half at the row's last
    real token and the backward half at its first (the encoder's summary of the source)."""
    rows = torch.arange(memory.shape[0], device=memory.device)
    last = memory[rows, lengths.to(memory.device) - 1]
    if not bidirectional:
        return last
    half = memory.shape[-1] // 2
    return torch.cat([last[:, :half], memory[:, 0, half:]], dim=-1)


class RNNEncoder(nn.Module):
    def __init__(self, config: RNNSeq2SeqConfig, embeddings: nn.Embedding) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.drop = Dropout(config.dropout)
        self.rnn = make_rnn(config, config.embedding_size, config.bidirectional)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, **_: Any) -> RNNEncoderOutput:
        """input_ids: (batch, source), right-padded; attention_mask: 1 = real token, 0 = padding."""
        check_ids(input_ids, self.embeddings.num_embeddings, "input_ids")
        lengths = source_lengths(input_ids, attention_mask)
        x = self.drop(self.embeddings(input_ids))
        memory, _final_state = recur(self.rnn, x, lengths=lengths)
        return RNNEncoderOutput(self.drop(memory))


def check_ids(input_ids: Tensor, vocab: int, what: str) -> None:
    if input_ids.dim() != 2:
        raise InputError(f"{what} must have shape (batch, seq), got {tuple(input_ids.shape)}; "
                         "for one sentence use ids[None]")
    if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab):
        bad = int(input_ids.min()) if int(input_ids.min()) < 0 else int(input_ids.max())
        raise InputError(f"{what}: token id {bad} is outside the vocabulary (size {vocab}); the tokenizer "
                         "does not match this model")
