"""Fitting a loaded model to entity inputs: rows for the markers, the entity embedding table.

Both start so that nothing changes for text without entities: the entity table at zero (an
entity-aware model computes what the plain one does until it is trained), the marker rows at the
mean of the word embeddings (a neutral token rather than a random one).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from hanformer.entities.config import EntityConfig
from hanformer.errors import ConfigError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.embeddings import EntityTypeEmbedding

ENTITY_TYPES = 2  # 0: not part of an entity, 1: part of one


def resize_token_embeddings(model: Any, vocab_size: int) -> None:
    """Grow the word embeddings (and a masked-LM head's bias) to `vocab_size` rows, new rows at
    the mean of the old ones. The embedding module stays the same object, so a decoder tied to
    it follows. Never shrinks: a checkpoint with spare rows keeps them."""
    embedding: nn.Embedding = model.bert.embeddings.word_embeddings
    old = embedding.weight.data
    extra = vocab_size - old.shape[0]
    if extra <= 0:
        return
    with torch.no_grad():
        rows = old.float().mean(0, keepdim=True).expand(extra, -1).to(old.dtype)
        embedding.weight = nn.Parameter(torch.cat([old, rows]))
        embedding.num_embeddings = vocab_size
        head = getattr(model, "mlm", None)
        if head is not None:
            head.bias = nn.Parameter(torch.cat([head.bias.data, head.bias.data.new_zeros(extra)]))
    _set_config(model, vocab_size=vocab_size)


def add_entity_embedding(model: Any) -> None:
    """Give a BERT model the entity table (zero) unless it has one; other families are refused."""
    if type(model.config) is not BertConfig:
        family = getattr(model.config, "model_type", type(model.config).__name__)
        raise ConfigError(f"the entity embedding is implemented for BERT checkpoints; this one is {family}: "
                          "pass --no-entity-embedding to give it the entity markers alone")
    if model.config.entity_type_vocab_size:
        return
    embeddings = model.bert.embeddings
    width = embeddings.word_embeddings.weight
    embeddings.entity_type_embeddings = EntityTypeEmbedding(ENTITY_TYPES, width.shape[1]).to(width.device, width.dtype)
    _set_config(model, entity_type_vocab_size=ENTITY_TYPES)


def prepare_entity_model(model: Any, vocab_size: int, config: EntityConfig) -> None:
    """What `config` needs of `model`: rows for the markers (the tokenizer has `vocab_size` ids)
    and the entity table."""
    if config.entity_markers:
        resize_token_embeddings(model, vocab_size)
    if config.entity_embedding:
        add_entity_embedding(model)


def _set_config(model: Any, **changes: Any) -> None:
    """The same change on the head's config and its encoder's (one object for our heads)."""
    model.config = dataclasses.replace(model.config, **changes)
    model.bert.config = dataclasses.replace(model.bert.config, **changes)
