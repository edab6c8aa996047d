"""The recurrent decoder: target ids (shifted right) + the memory -> vectors that predict the next token.

    first state   tanh(W · the encoder's final vectors), one per layer (and the LSTM's cell too)
    none          RNN([y_{t-1}; summary]) -> s_t;                 context = the summary
    bahdanau      a_t = attention(s_{t-1}, memory); c_t = a_t · memory; RNN([y_{t-1}; c_t]) -> s_t
    luong         RNN(y_{t-1}) -> s_t; a_t = attention(s_t, memory); c_t = a_t · memory
    readout       tanh(W [s_t; c_t]) (Luong's attentional vector), then the output projection

Only Bahdanau's context feeds the RNN's input, and it depends on the previous state, so that
decoder steps through the target one position at a time; the other two run the whole target in
one fused RNN call (teacher forcing), and all three run one call per generated token.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hanformer.models.common.dropout import Dropout
from hanformer.models.rnn.state import RNNState
from hanformer.models.seq2seq.attention import AdditiveAttention, MultiplicativeAttention
from hanformer.models.seq2seq.cache import RNNSeq2SeqCache
from hanformer.models.seq2seq.config import RNNSeq2SeqConfig
from hanformer.models.seq2seq.encoder import check_ids, final_vectors
from hanformer.models.seq2seq.recurrence import make_rnn, recur


class RNNDecoder(nn.Module):
    def __init__(self, config: RNNSeq2SeqConfig, embeddings: nn.Embedding) -> None:
        super().__init__()
        self.config = config
        h, m = config.hidden_size, config.memory_size
        self.embeddings = embeddings
        self.drop = Dropout(config.dropout)
        self.rnn = make_rnn(config, config.decoder_input_size, bidirectional=False)
        self.bridge = nn.Linear(m, config.state_tensors * config.num_layers * h)
        self.attention: AdditiveAttention | MultiplicativeAttention | None = None
        if config.attention == "bahdanau":
            self.attention = AdditiveAttention(h, m, config.attention_size)
        elif config.attention == "luong":
            self.attention = MultiplicativeAttention(h, m)
        self.readout = nn.Linear(h + m, config.embedding_size)

    def start(self, memory: Tensor, source_mask: Tensor) -> RNNSeq2SeqCache:
        """The state before the first target token, and what the source alone decides."""
        c = self.config
        summary = final_vectors(memory, source_mask.long().sum(dim=1), c.bidirectional)
        first = torch.tanh(self.bridge(summary)).view(-1, c.state_tensors, c.num_layers, c.hidden_size)
        state = RNNState(tuple(first[:, i].transpose(0, 1).contiguous() for i in range(c.state_tensors)))
        keys = self.attention.keys(memory) if self.attention is not None else None
        return RNNSeq2SeqCache(state, keys, summary)

    def forward(self, input_ids: Tensor, memory: Tensor, source_mask: Tensor,
                cache: RNNSeq2SeqCache) -> tuple[Tensor, Tensor | None]:
        """input_ids (batch, target) after the `cache.length` tokens `cache` holds -> (readout
        vectors (batch, target, embedding_size), attention weights (batch, target, source) or
        None without attention). `cache` is advanced past `input_ids`."""
        check_ids(input_ids, self.embeddings.num_embeddings, "decoder_input_ids")
        x = self.drop(self.embeddings(input_ids))
        weights: Tensor | None = None
        if self.attention is None:
            summary = cache.summary[:, None, :].expand(-1, x.shape[1], -1)
            outputs, cache.state = recur(self.rnn, torch.cat([x, summary.to(x.dtype)], dim=-1), cache.state)
            contexts = summary
        elif isinstance(self.attention, AdditiveAttention):
            outputs, contexts, weights = self._step_by_step(x, memory, source_mask, cache)
        else:
            assert cache.source_keys is not None  # start() made them
            outputs, cache.state = recur(self.rnn, x, cache.state)
            weights = self.attention(outputs, cache.source_keys, source_mask)
            contexts = weights.to(memory.dtype) @ memory
        cache.length += input_ids.shape[1]
        features = torch.tanh(self.readout(torch.cat([outputs, contexts.to(outputs.dtype)], dim=-1)))
        return self.drop(features), weights

    def _step_by_step(self, x: Tensor, memory: Tensor, source_mask: Tensor,
                      cache: RNNSeq2SeqCache) -> tuple[Tensor, Tensor, Tensor]:
        """Bahdanau: each step's context comes from the previous state and goes into the RNN."""
        assert self.attention is not None and cache.source_keys is not None
        state = cache.state
        outputs, contexts, weights = [], [], []
        for t in range(x.shape[1]):
            query = state.tensors[0][-1][:, None, :]  # the top layer's h (an LSTM's first tensor)
            w = self.attention(query, cache.source_keys, source_mask)
            c = w.to(memory.dtype) @ memory
            out, state = recur(self.rnn, torch.cat([x[:, t:t + 1], c.to(x.dtype)], dim=-1), state)
            outputs.append(out)
            contexts.append(c)
            weights.append(w)
        cache.state = state
        return torch.cat(outputs, dim=1), torch.cat(contexts, dim=1), torch.cat(weights, dim=1)
