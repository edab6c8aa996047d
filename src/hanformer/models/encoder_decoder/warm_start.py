"""Start a translation model's encoder from a pretrained BERT (hanformer's or a Hugging Face one).

A BERT encoder block is the encoder block of this Transformer (both are `TransformerBlock`),
so its layers move over unchanged. The rest is made to compute exactly what BERT computes for a
sentence of segment A: the model takes BERT's width, depth, heads, feed-forward size, activation,
LayerNorm placement and epsilon, learned positions (BERT's table plus its segment-A vector, which
BERT adds to every token), a LayerNorm on the summed embeddings (`normalize_embedding`) and no
sqrt(d) scaling. The vocabulary is BERT's: its word embeddings become the one matrix that the
encoder, the decoder and the output projection share, so the target side is written in BERT's
pieces too. The decoder (its blocks, its positions, its cross-attention) starts at random.

    bert = BertModel ─► TransformerConfig fields (bert_encoder_fields, decoder_defaults) ─► model built
                     ─► load_bert_encoder(model, bert): embeddings, positions, blocks copied
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hanformer.errors import ConfigError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.embeddings import BertEmbeddings
from hanformer.models.bert.model import BertModel
from hanformer.models.checkpoint import load_pretrained
from hanformer.models.encoder_decoder.model import TransformerForSeq2SeqLM


def load_bert(directory: str | Path) -> BertModel:
    """The bare BERT encoder of a checkpoint folder, refused with a one-line reason when its
    embeddings are not BERT's (ELECTRA's projection, RoBERTa's offset positions, entity tables)."""
    bert = load_pretrained(BertModel, directory)
    if type(bert) is not BertModel or type(bert.embeddings) is not BertEmbeddings:
        raise ConfigError(f"init_encoder {directory}: only a BERT can start the encoder (this checkpoint loads "
                          f"as {type(bert).__name__}, whose embeddings differ)")
    if bert.embeddings.position_embeddings is None:
        raise ConfigError(f"init_encoder {directory}: only a BERT with learned positions can start the encoder "
                          f"(this one has {bert.config.position_embedding_type!r} positions)")
    if bert.config.entity_type_vocab_size:
        raise ConfigError(f"init_encoder {directory}: an entity-aware BERT needs entity ids the translation "
                          "model has no way to give; start from a plain BERT")
    return bert


def bert_encoder_fields(config: BertConfig) -> dict[str, Any]:
    """The TransformerConfig fields under which the encoder computes what `config`'s BERT does
    (`settings.BERT_DECIDED` names them, so that overrides of them are refused)."""
    return {
        "vocab_size": config.vocab_size, "decoder_vocab_size": None, "d_model": config.hidden_size,
        "encoder_layers": config.num_hidden_layers, "encoder_attention_heads": config.num_attention_heads,
        "encoder_ffn_dim": config.intermediate_size, "activation_function": config.hidden_act,
        "norm_placement": config.norm_placement, "layer_norm_eps": config.layer_norm_eps,
        "position_embedding_type": "learned", "normalize_embedding": True, "scale_embedding": False,
        "share_encoder_decoder_embeddings": True,
    }


def decoder_defaults(config: BertConfig, layers: int) -> dict[str, Any]:
    """The decoder's depth, and as defaults the BERT's heads and feed-forward size (free to change)."""
    return {"decoder_layers": layers, "decoder_attention_heads": config.num_attention_heads,
            "decoder_ffn_dim": config.intermediate_size}


@torch.no_grad()
def load_bert_encoder(model: TransformerForSeq2SeqLM, bert: BertModel) -> None:
    """Copy `bert` into `model`'s encoder (built with `bert_encoder_fields`) and shared embeddings."""
    encoder, embeddings = model.model.encoder, bert.embeddings
    positions = encoder.position_embeddings
    assert positions is not None and encoder.embedding_norm is not None  # bert_encoder_fields asks for both
    assert embeddings.position_embeddings is not None  # load_bert checked it
    if positions.num_embeddings > embeddings.position_embeddings.num_embeddings:
        raise ConfigError(f"init_encoder: the translation model needs {positions.num_embeddings} positions but the "
                          f"BERT has {embeddings.position_embeddings.num_embeddings}; lower --max-length")
    encoder.token_embeddings.weight.copy_(embeddings.word_embeddings.weight)
    # BERT adds its segment-A vector to every token of a single sentence: fold it into the positions.
    segment_a = embeddings.token_type_embeddings.weight[0]
    positions.weight.copy_(embeddings.position_embeddings.weight[:positions.num_embeddings] + segment_a)
    encoder.embedding_norm.load_state_dict(embeddings.norm.state_dict())
    for ours, theirs in zip(encoder.layers, bert.layers, strict=True):
        ours.load_state_dict(theirs.state_dict())
    if encoder.final_norm is not None and bert.final_norm is not None:
        encoder.final_norm.load_state_dict(bert.final_norm.state_dict())
