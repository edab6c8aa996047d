"""The recurrent layers of both sides: torch's fused GRU/LSTM, run over whole sequences.

The recurrence over time runs inside torch's kernels (cuDNN on a GPU, oneDNN/ATen on a CPU);
a padded source is packed first, so each row's backward direction starts at its own last token
and padding changes nothing for the real ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from hanformer.models.rnn.state import RNNState
from hanformer.models.seq2seq.config import RNNSeq2SeqConfig


def make_rnn(config: RNNSeq2SeqConfig, input_size: int, bidirectional: bool) -> nn.GRU | nn.LSTM:
    cell = nn.LSTM if config.cell == "lstm" else nn.GRU
    # torch applies `dropout` between layers only, never after the last: the callers do that.
    return cell(input_size, config.hidden_size, config.num_layers, batch_first=True, bidirectional=bidirectional,
                dropout=config.dropout if config.num_layers > 1 else 0.0)


def recur(rnn: nn.GRU | nn.LSTM, x: Tensor, state: RNNState | None = None,
          lengths: Tensor | None = None) -> tuple[Tensor, RNNState]:
    """Run `rnn` over x (batch, time, features) from `state` (None: zeros) -> (outputs, last state).
    With `lengths` the rows are packed: outputs past a row's length are zeros."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        # oneDNN's CPU GRU/LSTM cannot build a bfloat16 kernel on CPUs without native bf16, so
        # under CPU autocast the recurrence alone runs in float32 (as the RNN language model's).
        with torch.autocast("cpu", enabled=False):
            floats = None if state is None else RNNState(tuple(t.float() for t in state.tensors))
            return recur(rnn, x.float(), floats, lengths)
    start = None if state is None else state.as_torch()
    if lengths is None:
        out, last = rnn(x, start)
        return out, RNNState.from_torch(last)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_out, last = rnn(packed, start)
    out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
    return out, RNNState.from_torch(last)
