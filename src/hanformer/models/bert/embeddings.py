"""BERT's input embeddings: token + segment (token type) + position, then LayerNorm and dropout.

An entity-aware BERT (`entity_type_vocab_size` > 0 in its config) adds a fourth table: whether
each token is part of an entity (id 1) or not (id 0). It starts at zero, so a model given the
table computes exactly what the plain model computes until fine-tuning moves it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hanformer.models.bert.config import BertConfig
from hanformer.models.common.dropout import Dropout


def sinusoidal_table(num_positions: int, dim: int) -> Tensor:
    """The fixed position table of "Attention Is All You Need":
    PE[pos, 2i] = sin(pos / 10000^(2i/dim)), PE[pos, 2i+1] = cos(pos / 10000^(2i/dim))."""
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)[:, : dim // 2]
    return table


class EntityTypeEmbedding(nn.Module):
    """One vector per entity id (0 = not part of an entity, 1 = part of one), zero at the start.

    Not an `nn.Embedding` on purpose: BERT's init draws every embedding table from a normal
    distribution, and this one must start at zero so that the entity-aware model starts identical
    to the plain one (its state-dict name, `...entity_type_embeddings.weight`, is an embedding's)."""

    def __init__(self, num_ids: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_ids, dim))

    def forward(self, entity_ids: Tensor) -> Tensor:
        return F.embedding(entity_ids, self.weight)


class BertEmbeddings(nn.Module):
    """Sum of word, token-type and position embeddings (and entity-type ones when configured).

    Works on a padded (batch, seq) grid or, for speed, on the real tokens only:
    pass 1-D `input_ids` of shape (tokens,) with matching 1-D `token_type_ids` and `position_ids`.
    """

    sinusoidal: Tensor  # a buffer, registered when position_embedding_type is "sinusoidal"

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.entity_type_embeddings = EntityTypeEmbedding(config.entity_type_vocab_size, config.hidden_size) \
            if config.entity_type_vocab_size else None
        if config.position_embedding_type == "absolute":
            self.position_embeddings: nn.Embedding | None = nn.Embedding(config.max_position_embeddings,
                                                                         config.hidden_size)
        else:
            self.position_embeddings = None
            # Not a parameter and not saved: it is a function of the config.
            self.register_buffer("sinusoidal", sinusoidal_table(config.max_position_embeddings, config.hidden_size),
                                 persistent=False)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def with_entities(self, input_ids: Tensor | None, inputs_embeds: Tensor | None, entity_ids: Tensor) -> Tensor:
        """The token vectors plus the entity vectors, to go into `forward` as `inputs_embeds`.
        (A step of its own rather than an argument of `forward`, whose signature the embeddings
        of the other families share; a zero table adds exactly nothing either way.)"""
        if self.entity_type_embeddings is None:
            raise ValueError("with_entities: this model has no entity embedding (entity_type_vocab_size 0)")
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        return x + self.entity_type_embeddings(entity_ids).to(x.dtype)

    def forward(self, input_ids: Tensor | None, token_type_ids: Tensor, position_ids: Tensor,
                inputs_embeds: Tensor | None = None) -> Tensor:
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        x = x + self.token_type_embeddings(token_type_ids)
        if self.position_embeddings is not None:
            x = x + self.position_embeddings(position_ids)
        else:
            x = x + self.sinusoidal[position_ids].to(x.dtype)
        return self.dropout(self.norm(x))
