"""Sentence embeddings: mean of the token vectors (padding excluded), L2-normalised.

This is how sentence-transformers models such as all-MiniLM-L6-v2 are used: the cosine
similarity of two embeddings (a dot product, once normalised) says how close two sentences are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hanformer.embedding.config import EmbedConfig
from hanformer.errors import ConfigError, InputError
from hanformer.models.bert.model import BertModel
from hanformer.models.checkpoint import load_model
from hanformer.models.common.base import PreTrainedModel
from hanformer.models.common.layers import masked_mean
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.distributed import env_dist_info, resolve_device


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """The checkpoint's tokenizer (vocab.txt or tokenizer.json beside the weights)."""
    return Tokenizer.from_pretrained(directory)


def encode_batch(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, Tensor]:
    """Padded, truncated `input_ids`, `token_type_ids`, `attention_mask` for `texts`."""
    if hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "enable_truncation"):  # a raw `tokenizers` one
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)
        encodings = tokenizer.encode_batch(list(texts))
        return {"input_ids": torch.tensor([e.ids for e in encodings]),
                "token_type_ids": torch.tensor([e.type_ids for e in encodings]),
                "attention_mask": torch.tensor([e.attention_mask for e in encodings])}
    batch = tokenizer(list(texts), max_length=max_length, truncation=True, padding=True, return_tensors="pt")
    return {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in batch}


def pool(last_hidden_state: Tensor, attention_mask: Tensor, pooling: str = "mean", normalize: bool = True) -> Tensor:
    """(batch, seq, hidden) -> (batch, hidden) sentence vectors."""
    if pooling == "cls":
        vectors = last_hidden_state[:, 0]
    else:
        vectors = masked_mean(last_hidden_state, attention_mask)
    return F.normalize(vectors, p=2, dim=-1) if normalize else vectors


def check_texts(texts: Sequence[str]) -> None:
    """Refuse what has no embedding worth comparing: no texts, or an empty one (its vector is
    that of the special tokens alone, so any similarity to it means nothing)."""
    if not texts:
        raise InputError("embed: no texts given")
    empty = next((i for i, t in enumerate(texts) if not t.strip()), None)
    if empty is not None:
        raise InputError(f"embed: text {empty + 1} of {len(texts)} is empty; give sentences with words in them")


@torch.no_grad()
def embed(model: str | Path | PreTrainedModel, texts: Sequence[str], *, tokenizer: Any = None,
          config: EmbedConfig | None = None) -> Tensor:
    """Embed `texts` with a checkpoint directory (or a loaded model): a (len(texts), hidden) float tensor.

    Sentences are sorted by length before batching so each batch carries little padding;
    the result is in the original order.
    """
    cfg = config or EmbedConfig()
    check_texts(texts)
    if cfg.batch_size < 1:
        raise ConfigError(f"embed: batch_size = {cfg.batch_size}: must be at least 1")
    if cfg.max_length is not None and cfg.max_length < 1:
        raise ConfigError(f"embed: max_length = {cfg.max_length}: must be at least 1 (or unset for the model's limit)")
    if isinstance(model, (str, Path)):
        tokenizer = tokenizer or load_tokenizer(model)
        model = load_model(model, "BertModel")
    if tokenizer is None:
        raise InputError("embed: pass a tokenizer together with a loaded model")
    encoder = model if isinstance(model, BertModel) else model.bert
    assert isinstance(encoder, BertModel)  # every task head holds its encoder as `bert`
    device = resolve_device(cfg.device, env_dist_info())
    encoder = encoder.to(device).eval()
    max_length = min(cfg.max_length or encoder.config.max_position_embeddings, encoder.config.max_position_embeddings)

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), encoder.config.hidden_size)
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        batch = {k: v.to(device) for k, v in encode_batch(tokenizer, [texts[i] for i in idx], max_length).items()}
        hidden = encoder(**batch).last_hidden_state
        out[idx] = pool(hidden, batch["attention_mask"], cfg.pooling, cfg.normalize).float().cpu()
    return out


def similarity(a: Tensor, b: Tensor | None = None) -> Tensor:
    """Cosine similarity matrix between rows of `a` and rows of `b` (default: `a` itself)."""
    b = a if b is None else b
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
