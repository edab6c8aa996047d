"""RNNConfig: the shape of a recurrent language model (LSTM or GRU), saved as config.json.

    input_ids ──► embedding (E) ──► dropout ──► LSTM/GRU × layers (H) ──► dropout
              ──► [projection H → E when tied and H ≠ E] ──► · Eᵀ + b ──► logits

With tied embeddings (Press & Wolf, 2017; Inan et al., 2017) the output layer reuses the input
embedding matrix, so it needs vectors of the embedding's width: PyTorch's word_language_model
example refuses H ≠ E; here a linear projection H → E bridges them instead.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from hanformer.errors import ConfigError
from hanformer.models.common.config import (
    OwnLayoutConfig,
    require_choice,
    require_positive_ints,
    require_probabilities,
    require_token_ids,
)
from hanformer.utils.config import setting

MODEL_TYPE = "rnn_lm"
CELLS = ("lstm", "gru")
# Gate blocks per layer: an LSTM has input, forget, cell and output gates; a GRU reset, update, new.
_GATES = {"lstm": 4, "gru": 3}


@dataclasses.dataclass
class RNNConfig(OwnLayoutConfig):
    model_type: ClassVar[str] = MODEL_TYPE
    architecture: ClassVar[str] = "RNNLanguageModel"
    described_as: ClassVar[str] = "an RNN language model"

    vocab_size: int = setting(30000, "number of token ids (must match the tokenizer's vocabulary)")
    cell: Literal["lstm", "gru"] = setting("lstm", "recurrent cell: lstm or gru")
    embedding_size: int = setting(256, "width of the token embeddings")
    hidden_size: int = setting(256, "width of the recurrent state of every layer")
    num_layers: int = setting(2, "stacked recurrent layers")
    dropout: float = setting(0.2, "dropout on the embeddings, between layers and on the output")
    tie_embeddings: bool = setting(True, "the output layer reuses the input embedding matrix")
    init_range: float = setting(0.1, "embeddings (and an untied output layer) start uniform in +-init_range")
    separator_id: int | None = setting(None, "token between documents; also where sampling starts")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        require_positive_ints(self, ("vocab_size", "embedding_size", "hidden_size", "num_layers"))
        require_choice(self, "cell", CELLS)
        require_probabilities(self, ("dropout",))
        if not isinstance(self.init_range, (int, float)) or not self.init_range > 0:
            raise ConfigError(f"RNNConfig: init_range must be a positive number, got {self.init_range!r}")
        require_token_ids(self, ("separator_id",))

    @property
    def projects(self) -> bool:
        """Whether a projection H → E sits before the tied output layer."""
        return self.tie_embeddings and self.hidden_size != self.embedding_size

    @property
    def state_tensors(self) -> int:
        """Tensors of the recurrent state: (h, c) for an LSTM, h for a GRU."""
        return 2 if self.cell == "lstm" else 1

    def parameter_count(self) -> int:
        """Parameters of `RNNLanguageModel(config)`, from the shape alone."""
        e, h, v, gates = self.embedding_size, self.hidden_size, self.vocab_size, _GATES[self.cell]
        # Each layer: input and recurrent weights of every gate, and torch's two bias vectors.
        recurrent = sum(gates * h * ((e if i == 0 else h) + h + 2) for i in range(self.num_layers))
        out_width = e if self.tie_embeddings else h
        projection = h * e + e if self.projects else 0
        decoder = (0 if self.tie_embeddings else v * out_width) + v
        return v * e + recurrent + projection + decoder
