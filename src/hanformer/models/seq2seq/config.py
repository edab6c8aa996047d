"""RNNSeq2SeqConfig: the shape of a recurrent encoder–decoder (GRU or LSTM), saved as config.json.

    source ─► E ─► (bi)GRU/LSTM × layers ─► memory (one vector per source token, M wide)
                                              │ final vectors ─► tanh(W ·) ─► decoder's first state
    target ─► E ─► GRU/LSTM × layers ─► s_t ──┴► context c_t ─► tanh(W [s_t; c_t]) ─► · Eᵀ + b

`attention` decides what c_t is:

    none      the encoder's final vectors, the same at every step, also fed with every target
              embedding (Cho et al., 2014; Sutskever et al., 2014 pass only the first state)
    bahdanau  additive attention vᵀ tanh(W s_{t-1} + U h_j), whose context also feeds the RNN's
              input (Bahdanau et al., 2015): the decoder steps one target position at a time
    luong     multiplicative ("general") attention s_tᵀ W h_j after the RNN (Luong et al., 2015,
              without input feeding): teacher forcing runs the whole target in one RNN call

With a bidirectional encoder M = 2 x hidden_size (forward and backward halves); the decoder's
state is hidden_size wide. The field names that the translation code reads (vocab_size,
max_position_embeddings, pad/eos/decoder_start token ids) are the Transformer config's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from hanformer.errors import ConfigError
from hanformer.models.common.config import (
    OwnLayoutConfig,
    load_model_config,
    require_choice,
    require_positive_ints,
    require_probabilities,
    require_token_ids,
)
from hanformer.utils.config import setting

MODEL_TYPE = "rnn_seq2seq"
ARCHITECTURE = "RNNForSeq2SeqLM"
CELLS = ("gru", "lstm")
ATTENTIONS = ("none", "bahdanau", "luong")
# Gate blocks per layer: an LSTM has input, forget, cell and output gates; a GRU reset, update, new.
_GATES = {"lstm": 4, "gru": 3}

# name -> (embedding size, hidden size, layers, attention size). The names are the Transformer's
# presets, so `--model` means the same step in size for every architecture; "base" is the
# RNNsearch of Bahdanau et al. (620-wide embeddings, 1000-wide states and attention).
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (64, 64, 1, 64),
    "mini": (256, 256, 1, 256),
    "small": (512, 512, 2, 512),
    "base": (620, 1000, 1, 1000),
}


@dataclasses.dataclass
class RNNSeq2SeqConfig(OwnLayoutConfig):
    model_type: ClassVar[str] = MODEL_TYPE
    architecture: ClassVar[str] = ARCHITECTURE
    described_as: ClassVar[str] = "an RNN encoder-decoder"

    vocab_size: int = setting(8000, "number of token ids (source and target share one vocabulary)")
    max_position_embeddings: int = setting(
        128, "longest source or target the model is used for, in tokens (a recurrence has no position "
        "table; translation caps its output by this)")
    cell: Literal["gru", "lstm"] = setting("gru", "recurrent cell of the encoder and the decoder: gru or lstm")
    attention: Literal["none", "bahdanau", "luong"] = setting(
        "bahdanau", "context the decoder reads: none (the encoder's final vectors), bahdanau (additive "
        "attention feeding the RNN input) or luong (multiplicative attention after the RNN)")
    embedding_size: int = setting(256, "width of the token embeddings")
    hidden_size: int = setting(256, "width of the decoder's state and of each encoder direction's")
    num_layers: int = setting(1, "stacked recurrent layers, in the encoder and in the decoder")
    bidirectional: bool = setting(True, "read the source in both directions (the memory is twice as wide)")
    attention_size: int = setting(256, "width of the additive (bahdanau) attention's hidden layer")
    dropout: float = setting(0.2, "dropout on the embeddings, between layers, on the memory and on the readout")
    share_encoder_decoder_embeddings: bool = setting(True, "one embedding matrix for source and target tokens")
    tie_word_embeddings: bool = setting(True, "the output projection is the target embedding matrix")
    init_range: float = setting(0.5, "embeddings (and an untied output layer) start uniform in +-init_range "
                                "(the language model's 0.1 starts these models far slower)")
    label_smoothing: float = setting(0.1, "label smoothing of the training loss (0 = plain cross-entropy)")
    pad_token_id: int = setting(0, "id of the padding token")
    eos_token_id: int = setting(3, "token that ends a source sentence and a translation")
    decoder_start_token_id: int = setting(2, "first decoder input of every translation")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject shapes that cannot work, naming the field."""
        require_positive_ints(self, ("vocab_size", "max_position_embeddings", "embedding_size", "hidden_size",
                                     "num_layers", "attention_size"))
        require_choice(self, "cell", CELLS)
        require_choice(self, "attention", ATTENTIONS)
        require_probabilities(self, ("dropout", "label_smoothing"))
        if not isinstance(self.init_range, (int, float)) or not self.init_range > 0:
            raise ConfigError(f"RNNSeq2SeqConfig: init_range must be a positive number, got {self.init_range!r}")
        require_token_ids(self, ("pad_token_id", "eos_token_id", "decoder_start_token_id"))

    @property
    def start_token_id(self) -> int:
        """The first decoder input of every translation (the name the translation code reads)."""
        return self.decoder_start_token_id

    @property
    def memory_size(self) -> int:
        """Width of the encoder's vector for each source token."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    @property
    def state_tensors(self) -> int:
        """Tensors of the recurrent state: (h, c) for an LSTM, h for a GRU."""
        return 2 if self.cell == "lstm" else 1

    @property
    def decoder_input_size(self) -> int:
        """The decoder RNN reads the target embedding, plus the context where it comes before the RNN."""
        return self.embedding_size + (0 if self.attention == "luong" else self.memory_size)

    def parameter_count(self) -> int:
        """Parameters of `RNNForSeq2SeqLM(config)` (tied matrices counted once), from the shape alone."""
        e, h, m, v, a = self.embedding_size, self.hidden_size, self.memory_size, self.vocab_size, self.attention_size
        gates, layers = _GATES[self.cell], self.num_layers

        def rnn(inputs: int, directions: int) -> int:  # torch keeps two bias vectors per gate block
            return directions * sum(gates * h * ((inputs if i == 0 else h * directions) + h + 2)
                                    for i in range(layers))

        embeddings = v * e * (1 if self.share_encoder_decoder_embeddings else 2)
        output = v + (0 if self.tie_word_embeddings else v * e)
        bridge = m * layers * h * self.state_tensors + layers * h * self.state_tensors
        attention = {"none": 0, "bahdanau": m * a + h * a + a + a, "luong": m * h}[self.attention]
        readout = (h + m) * e + e
        return (embeddings + output + rnn(e, 2 if self.bidirectional else 1) + rnn(self.decoder_input_size, 1)
                + bridge + attention + readout)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> RNNSeq2SeqConfig:
        """A known size (tiny, mini, small, base), with any field overridden."""
        if name not in PRESETS:
            raise ConfigError(f"unknown RNN seq2seq preset {name!r}; choose one of {', '.join(PRESETS)}")
        embedding, hidden, layers, attention = PRESETS[name]
        values: dict[str, Any] = dict(embedding_size=embedding, hidden_size=hidden, num_layers=layers,
                                      attention_size=attention)
        values.update(overrides)
        return load_model_config(cls, values, f"preset {name!r}")
