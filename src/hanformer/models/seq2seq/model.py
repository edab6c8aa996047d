"""RNNForSeq2SeqLM: a GRU/LSTM encoder–decoder for translation, with or without attention.

    source ids ─► RNNEncoder (encoder.py) ─► memory ─┐
    target ids ─► RNNDecoder (decoder.py) ◄──────────┘ ─► readout · Eᵀ + b ─► next-token logits

It answers the calls the Transformer's `TransformerForSeq2SeqLM` answers, so the same training
loop, validation, `hanformer.generation` search (greedy and beam) and `translate()` run it:
`get_encoder()(input_ids=..., attention_mask=...).last_hidden_state`, then
`model(attention_mask=..., decoder_input_ids=..., encoder_outputs=(memory,), past_key_values=...,
use_cache=True)`; the cache (cache.py) has `reorder(rows)` for beam search. With
`output_attentions=True` the output holds the attention weights, (batch, target, source).

A saved model is a folder:

    config.json          RNNSeq2SeqConfig (model_type "rnn_seq2seq")
    model.safetensors    the weights, a shared or tied matrix stored once
    tokenizer files      written beside by `hanformer translation train`
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
from hanformer.models.common.outputs import ModelOutput, encoder_hidden_state
from hanformer.models.encoder_decoder.model import shift_right
from hanformer.models.seq2seq.cache import RNNSeq2SeqCache
from hanformer.models.seq2seq.config import RNNSeq2SeqConfig
from hanformer.models.seq2seq.decoder import RNNDecoder
from hanformer.models.seq2seq.encoder import RNNEncoder
from hanformer.utils.labels import IGNORE_INDEX

WEIGHTS_FILE = "model.safetensors"


@dataclass
class RNNSeq2SeqOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None
    past_key_values: RNNSeq2SeqCache | None = None
    encoder_last_hidden_state: Tensor | None = None
    cross_attentions: Tensor | None = None
    """With output_attentions and attention: (batch, target, source) weights, 0 on padding."""


class RNNForSeq2SeqLM(nn.Module):
    def __init__(self, config: RNNSeq2SeqConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        v, e, pad = config.vocab_size, config.embedding_size, config.pad_token_id
        source = nn.Embedding(v, e, padding_idx=pad)
        # One matrix for both sides when shared (the same module, so the same parameter).
        target = source if config.share_encoder_decoder_embeddings else nn.Embedding(v, e, padding_idx=pad)
        self.encoder = RNNEncoder(config, source)
        self.decoder = RNNDecoder(config, target)
        self.output = None if config.tie_word_embeddings else nn.Linear(e, v, bias=False)
        self.output_bias = nn.Parameter(torch.zeros(v))
        self.init_weights()

    def init_weights(self) -> None:
        """Uniform embeddings (and untied output), as the RNN language model's; the recurrent and
        attention layers keep torch's uniform(+-1/sqrt(fan-in))."""
        r = self.config.init_range
        for module in (self.encoder.embeddings, self.decoder.embeddings, self.output):
            if module is None:
                continue
            nn.init.uniform_(module.weight, -r, r)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    def get_encoder(self) -> RNNEncoder:
        return self.encoder

    def output_weight(self) -> Tensor:
        """The (vocab, embedding_size) output projection: the target embeddings when tied."""
        return self.output.weight if self.output is not None else self.decoder.embeddings.weight

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # a shared matrix is counted once

    @property
    def device(self) -> torch.device:
        return self.output_bias.device

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                decoder_input_ids: Tensor | None = None, encoder_outputs: Any = None,
                past_key_values: RNNSeq2SeqCache | None = None, use_cache: bool = False,
                labels: Tensor | None = None, output_attentions: bool = False, logits_to_keep: int = 0,
                **_: Any) -> RNNSeq2SeqOutput:
        """input_ids / attention_mask: the (right-padded) source; decoder_input_ids: the target
        shifted right (made from `labels` when absent). `encoder_outputs` skips the encoder;
        `past_key_values` continues after the tokens it holds. The loss is cross-entropy with
        `config.label_smoothing` over the real target tokens (pad and -100 do not count).
        logits_to_keep: project only the last n positions onto the vocabulary (0 = all)."""
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = shift_right(labels, self.config.start_token_id, self.config.pad_token_id)
        if decoder_input_ids is None:
            raise InputError("pass decoder_input_ids (or labels, from which they are made by shifting right)")
        if encoder_outputs is None:
            if input_ids is None:
                raise InputError("pass the source as input_ids (or its encoding as encoder_outputs)")
            encoder_outputs = self.encoder(input_ids, attention_mask)
        memory = encoder_hidden_state(encoder_outputs)
        source_mask = attention_mask if attention_mask is not None else \
            torch.ones(memory.shape[:2], dtype=torch.long, device=memory.device)
        caching = use_cache and labels is None
        cache = past_key_values if caching and past_key_values is not None else self.decoder.start(memory, source_mask)
        features, weights = self.decoder(decoder_input_ids, memory, source_mask, cache)
        if logits_to_keep and labels is None:
            features = features[:, -logits_to_keep:]
        logits = F.linear(features, self.output_weight()) + self.output_bias.to(features.dtype)
        loss = None
        if labels is not None:
            targets = labels.masked_fill(labels == self.config.pad_token_id, IGNORE_INDEX)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                   ignore_index=IGNORE_INDEX, label_smoothing=self.config.label_smoothing)
        return RNNSeq2SeqOutput(loss, logits, cache if caching else None, memory,
                                weights if output_attentions else None)

    # ------------------------------------------------------------------ folder I/O
    def _stored(self) -> dict[str, Tensor]:
        """The state dict with each shared or tied matrix once (safetensors refuses aliases)."""
        seen: set[int] = set()
        out = {}
        for key, value in self.state_dict().items():
            if value.data_ptr() in seen:
                continue
            seen.add(value.data_ptr())
            out[key] = value.detach().contiguous().cpu()
        return out

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write config.json and model.safetensors (see the module docstring)."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(self._stored(), str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        self.config.save_pretrained(folder)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], *,
                        device: torch.device | str = "cpu") -> RNNForSeq2SeqLM:
        """Load a folder written by `save_pretrained` (in eval mode)."""
        folder = Path(directory)
        if not (folder / "config.json").is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise CheckpointError(f"{folder}: no config.json and {WEIGHTS_FILE}, so not an RNN translation model "
                                  "folder (make one with `hanformer translation train --architecture gru`)")
        model = cls(RNNSeq2SeqConfig.from_pretrained(folder))
        try:
            weights = load_file(str(folder / WEIGHTS_FILE))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{folder / WEIGHTS_FILE}: cannot read the weights ({e})") from None
        aliases = set(model.state_dict()) - set(model._stored())
        try:
            missing, unexpected = model.load_state_dict(weights, strict=False)
        except RuntimeError as e:  # a tensor of another shape than config.json says
            raise CheckpointError(f"{folder / WEIGHTS_FILE}: weights do not fit config.json "
                                  f"({str(e).splitlines()[-1].strip()})") from None
        missing = [k for k in missing if k not in aliases]
        if missing or unexpected:
            raise CheckpointError(f"{folder / WEIGHTS_FILE}: weights do not fit config.json (missing "
                                  f"{missing[:3]}, unexpected {unexpected[:3]}); the folder mixes two models")
        return model.to(device).eval()
