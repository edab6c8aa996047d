"""RNNLanguageModel: an LSTM/GRU language model on `torch.nn.LSTM` / `torch.nn.GRU`.

The recurrence over time runs inside torch's fused kernels (cuDNN on a GPU, oneDNN/ATen on a
CPU): there is no Python loop over positions, in training or in scoring. The forward pass takes
a carried `RNNState` and returns the new one, which is what truncated backpropagation through
time and sampling both need.

A saved model is a folder:

    config.json          RNNConfig (model_type "rnn_lm")
    model.safetensors    the weights; with tied embeddings the output matrix is not stored
                         (it is embedding.weight), only the output bias
    tokenizer files      written beside by `hanformer rnn train` (tokenizer.json, vocab.txt, ...)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from hanformer.errors import CheckpointError, InputError
from hanformer.models.common.dropout import Dropout
from hanformer.models.common.outputs import ModelOutput
from hanformer.models.rnn.config import RNNConfig
from hanformer.models.rnn.state import RNNState
from hanformer.utils.labels import IGNORE_INDEX

WEIGHTS_FILE = "model.safetensors"
_TIED_KEY = "decoder.weight"


@dataclass
class RNNLMOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None
    state: RNNState | None = None
    past_key_values: RNNState | None = None  # the same state, for `hanformer.generation`


class RNNLanguageModel(nn.Module):
    """Next-token logits at every position of `input_ids`, given the state before them."""

    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        e, h = config.embedding_size, config.hidden_size
        self.embedding = nn.Embedding(config.vocab_size, e)
        self.drop = Dropout(config.dropout)
        cell = nn.LSTM if config.cell == "lstm" else nn.GRU
        # torch applies `dropout` between layers only, never after the last: self.drop does that.
        self.rnn = cell(e, h, config.num_layers, batch_first=True,
                        dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.projection = nn.Linear(h, e) if config.projects else None
        self.decoder = nn.Linear(e if config.tie_embeddings else h, config.vocab_size)
        self.init_weights()
        if config.tie_embeddings:
            self.decoder.weight = self.embedding.weight

    def init_weights(self) -> None:
        """word_language_model's init: uniform embeddings and output matrix, zero output bias;
        the recurrent layers keep torch's uniform(+-1/sqrt(hidden))."""
        r = self.config.init_range
        nn.init.uniform_(self.embedding.weight, -r, r)
        nn.init.zeros_(self.decoder.bias)
        if not self.config.tie_embeddings:
            nn.init.uniform_(self.decoder.weight, -r, r)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # a tied matrix is counted once

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    def training_flops_per_token(self) -> int:
        """Forward + backward FLOPs of one token: 6 x the multiply-adds of every matrix it meets
        (the embedding lookup is free, the output layer is a full vocabulary product)."""
        matrices = sum(p.numel() for name, p in self.rnn.named_parameters() if name.startswith("weight"))
        if self.projection is not None:
            matrices += self.projection.weight.numel()
        return 6 * (matrices + self.decoder.weight.numel())

    def forward(self, input_ids: Tensor, targets: Tensor | None = None, state: RNNState | None = None, *,
                past_key_values: RNNState | None = None, use_cache: bool = False,
                attention_mask: Tensor | None = None, **_: Any) -> RNNLMOutput:
        """input_ids: (batch, length). targets: (batch, length), the token that *follows* each
        input position (already shifted: a window of truncated backpropagation needs the token
        past its end), IGNORE_INDEX where there is none. state: the state before the window
        (None: zeros; `past_key_values` is the same argument under the generation loops' name).
        Extra generation arguments (position_ids) mean nothing to a recurrence and are ignored.
        """
        if attention_mask is not None and not bool(attention_mask.all()):
            raise InputError("an RNN language model reads every position, so it cannot skip padding; "
                             "give prompts one at a time (or of equal length)")
        start = state if state is not None else past_key_values
        x = self.drop(self.embedding(input_ids))
        out, last = self._recur(x, start)
        out = self.drop(out)
        if self.projection is not None:
            out = self.projection(out)
        logits = self.decoder(out)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                   ignore_index=IGNORE_INDEX)
        new_state = RNNState.from_torch(last)
        return RNNLMOutput(loss=loss, logits=logits, state=new_state,
                           past_key_values=new_state if use_cache else None)

    def _recur(self, x: Tensor, start: RNNState | None) -> tuple[Tensor, Any]:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # oneDNN's CPU LSTM/GRU cannot build a bfloat16 kernel on CPUs without native bf16
            # (it fails outright), so under CPU autocast the recurrence alone runs in float32.
            with torch.autocast("cpu", enabled=False):
                floats = None if start is None else RNNState(tuple(t.float() for t in start.tensors))
                return self.rnn(x.float(), None if floats is None else floats.as_torch())
        return self.rnn(x, None if start is None else start.as_torch())

    # ------------------------------------------------------------------ folder I/O
    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write config.json and model.safetensors (see the module docstring)."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()
                   if not (self.config.tie_embeddings and k == _TIED_KEY)}
        save_file(weights, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        self.config.save_pretrained(folder)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], *, device: torch.device | str = "cpu") -> RNNLanguageModel:
        """Load a folder written by `save_pretrained` (in eval mode)."""
        folder = Path(directory)
        if not (folder / "config.json").is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise CheckpointError(f"{folder}: no config.json and {WEIGHTS_FILE}, so not an RNN language model "
                                  "folder (make one with `hanformer rnn train`; the model is in OUT/final)")
        model = cls(RNNConfig.from_pretrained(folder))
        try:
            weights = load_file(str(folder / WEIGHTS_FILE))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{folder / WEIGHTS_FILE}: cannot read the weights ({e})") from None
        try:
            missing, unexpected = model.load_state_dict(weights, strict=False)
        except RuntimeError as e:  # a tensor of another shape than config.json says
            raise CheckpointError(f"{folder / WEIGHTS_FILE}: weights do not fit config.json "
                                  f"({str(e).splitlines()[-1].strip()})") from None
        missing = [k for k in missing if not (model.config.tie_embeddings and k == _TIED_KEY)]
        if missing or unexpected:
            raise CheckpointError(f"{folder / WEIGHTS_FILE}: weights do not fit config.json (missing "
                                  f"{missing[:3]}, unexpected {unexpected[:3]}); the folder mixes two models")
        return model.to(device).eval()
