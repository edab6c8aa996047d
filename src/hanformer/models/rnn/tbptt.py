"""Truncated backpropagation through time for the `Trainer`: stream windows and a carried state.

`StreamWindows` is the batch source. As PyTorch's word_language_model `batchify`s its corpus,
it cuts the token stream into `batch_size` contiguous pieces, one per row, and hands out
consecutive `bptt`-token windows of all rows at once: window k+1 of a row continues exactly
where window k ended. An epoch ends when the rows run out (the last window may be shorter, so
every token is predicted once per epoch); the next one starts again at the beginning from a
zero state.

`CarriedStateLM` is the module the Trainer steps. It starts each window from the state the
previous window ended in, detached (gradients flow back through `bptt` steps, no further), and
hands the new state back to the batch source.

Exact resume: the carried state is *saved*, not recomputed. It belongs to the stream position,
so the batch source keeps it and its `state_dict` (which the Trainer writes into every
checkpoint next to the weights) holds both: the position (epoch, column) and the state after the
last window handed out. Recomputing it would mean replaying the epoch up to that column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hanformer.errors import CheckpointError, InputError
from hanformer.models.rnn.model import RNNLanguageModel, RNNLMOutput
from hanformer.models.rnn.state import RNNState


class StreamWindows:
    """`{"input_ids", "targets"}` windows of (batch_size, <= bptt) tokens; targets are the next tokens.

    With several processes each rank takes its own `batch_size` rows of `batch_size x world_size`
    pieces, so together they cover the stream once per epoch.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int, *, rank: int = 0, world_size: int = 1) -> None:
        streams = batch_size * world_size
        length = len(ids) // streams
        if length < 2:
            raise InputError(f"the training text has {len(ids)} tokens: too few to cut into {streams} streams "
                             f"of at least 2 tokens; lower --batch-size or give more text")
        rows = np.asarray(ids[:length * streams], dtype=np.int64).reshape(streams, length)
        self.data = torch.from_numpy(rows[rank * batch_size:(rank + 1) * batch_size].copy())
        self.bptt = bptt
        self.length = length
        self.epoch = 0
        self.position = 0  # column of the next window's first input token
        self.carried: RNNState | None = None

    def windows_per_epoch(self) -> int:
        return -(-(self.length - 1) // self.bptt)

    def next_batch(self) -> dict[str, Tensor]:
        if self.position >= self.length - 1:
            self.epoch += 1
            self.position = 0
            self.carried = None  # the rows jump back to their beginnings: nothing to carry over
        p = self.position
        n = min(self.bptt, self.length - 1 - p)
        self.position = p + n
        return {"input_ids": self.data[:, p:p + n], "targets": self.data[:, p + 1:p + 1 + n]}

    def state_dict(self) -> dict[str, Any]:
        carried = None if self.carried is None else [t.detach().cpu().clone() for t in self.carried.tensors]
        return {"epoch": self.epoch, "position": self.position, "length": self.length,
                "rows": int(self.data.shape[0]), "carried": carried}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("length") != self.length or state.get("rows") != self.data.shape[0]:
            raise CheckpointError(f"the checkpoint's token streams ({state.get('rows')} rows of "
                                  f"{state.get('length')} tokens) are not this run's ({self.data.shape[0]} of "
                                  f"{self.length}); resume with the same text, tokenizer and --batch-size")
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        carried = state.get("carried")
        self.carried = None if carried is None else RNNState(tuple(carried))


class CarriedStateLM(nn.Module):
    """The language model, starting every window from the state `windows` carries."""

    def __init__(self, lm: RNNLanguageModel, windows: StreamWindows) -> None:
        super().__init__()
        self.lm = lm
        self.windows = windows

    def forward(self, input_ids: Tensor, targets: Tensor) -> RNNLMOutput:
        carried = self.windows.carried
        if carried is not None:
            carried = carried.to(input_ids.device)
        out = self.lm(input_ids, targets, carried)
        assert out.state is not None  # the model always returns its last state
        self.windows.carried = out.state.detach()
        return out
