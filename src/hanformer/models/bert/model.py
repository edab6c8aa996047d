"""BERT: embeddings, a stack of Transformer blocks, and the [CLS] pooler.

    input_ids ──► embeddings ──► block × N ──► last_hidden_state ──► pooler(tanh(W·h[CLS]))

When the batch has padding, every dense layer runs on the real tokens only (a
`TokenLayout` packs them as (tokens, hidden)); attention re-pads them to see whole sentences,
in a few length buckets so that short sentences are not padded to the longest one. Outputs are the same as the padded computation at every real position
(padding positions of `last_hidden_state` are zeros rather than meaningless vectors).
Set `model.unpad = False` to compute on the padded grid as transformers does.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from hanformer.errors import InputError
from hanformer.models.bert.config import BertConfig
from hanformer.models.bert.embeddings import BertEmbeddings
from hanformer.models.common.base import PreTrainedModel
from hanformer.models.common.layers import TokenLayout, TransformerBlock, padding_mask
from hanformer.models.common.outputs import BaseModelOutputWithPooling


class BertPreTrainedModel(PreTrainedModel):
    """What every BERT model shares: config, weight init, Hugging Face save/load
    (old key names included; the mapping lives in models/bert/checkpoint.py)."""

    config_class = BertConfig
    config: BertConfig

    def init_weights(self) -> None:
        """BERT's init: normal(0, initializer_range) weights, zero biases, unit LayerNorms."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
                if module.padding_idx is not None:
                    with torch.no_grad():
                        module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for name, param in self.named_parameters():
            if name.endswith("mlm.bias"):
                nn.init.zeros_(param)


class BertModel(BertPreTrainedModel):
    """The bare encoder: returns `last_hidden_state` and `pooler_output`."""

    # Families that differ only in their embeddings (ELECTRA's projection) swap this class.
    embeddings_class: ClassVar[type[BertEmbeddings]] = BertEmbeddings

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.layers = nn.ModuleList(
            TransformerBlock(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                             act=config.hidden_act, dropout=config.hidden_dropout_prob,
                             attention_dropout=config.attention_probs_dropout_prob,
                             layer_norm_eps=config.layer_norm_eps, norm_placement=config.norm_placement,
                             layer_index=i)
            for i in range(config.num_hidden_layers))
        # Pre-LN leaves the residual stream un-normalised; one LayerNorm at the end fixes that.
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) \
            if config.norm_placement == "pre" else None
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.unpad = True
        self.init_weights()

    def check_inputs(self, input_ids: Tensor | None, attention_mask: Tensor | None,
                     token_type_ids: Tensor | None, seq_len: int) -> None:
        """Turn inputs that would crash deep inside (or silently mislead) into one-line errors."""
        cfg = self.config
        if seq_len > cfg.max_position_embeddings:
            raise InputError(
                f"sequence length {seq_len} exceeds this model's limit of {cfg.max_position_embeddings} "
                f"positions (max_position_embeddings); truncate the input, e.g. "
                f"tokenizer(texts, truncation=True, max_length={cfg.max_position_embeddings})")
        if input_ids is not None and input_ids.numel():
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= cfg.vocab_size:
                bad = low if low < 0 else high
                raise InputError(
                    f"token id {bad} is outside the vocabulary (vocab_size {cfg.vocab_size}); the tokenizer "
                    f"does not match this model, or vocab_size in config.json is too small")
        if token_type_ids is not None and token_type_ids.numel():
            high = int(token_type_ids.max())
            if high >= cfg.type_vocab_size or int(token_type_ids.min()) < 0:
                raise InputError(f"token_type_ids contain {high}, but the model has only {cfg.type_vocab_size} "
                                 f"segment types (type_vocab_size)")
        if attention_mask is not None and attention_mask.dim() == 2 and input_ids is not None \
                and attention_mask.shape != input_ids.shape:
            raise InputError(f"attention_mask shape {tuple(attention_mask.shape)} does not match input_ids "
                             f"shape {tuple(input_ids.shape)}")

    def check_entity_ids(self, entity_ids: Tensor | None, shape: tuple[int, ...]) -> None:
        """An entity-aware model needs its entity ids; a plain one has no use for them."""
        rows = self.config.entity_type_vocab_size
        if rows and entity_ids is None:
            raise InputError(
                f"this model is entity-aware (entity_type_vocab_size {rows}) and needs entity_ids: pass "
                "entity_ids= (batch, seq), 1 where a token is part of an entity, 0 elsewhere "
                "(hanformer.entities computes them; on the command line, --entities)")
        if entity_ids is None:
            return
        if not rows:
            raise InputError("entity_ids were given, but this model has no entity embedding "
                             "(entity_type_vocab_size 0 in config.json); leave entity_ids out, or fine-tune "
                             "it with entities first (--entities)")
        if tuple(entity_ids.shape) != shape:
            raise InputError(f"entity_ids shape {tuple(entity_ids.shape)} does not match input_ids shape {shape}")
        if entity_ids.numel() and (int(entity_ids.min()) < 0 or int(entity_ids.max()) >= rows):
            raise InputError(f"entity_ids contain {int(entity_ids.max())}, but the model has only {rows} "
                             "entity types (entity_type_vocab_size)")

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                inputs_embeds: Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False, **extra: Any) -> BaseModelOutputWithPooling:
        """input_ids: (batch, seq) token ids. attention_mask: (batch, seq) 1 = real token, 0 = padding
        (or a boolean mask broadcastable to (batch, heads, seq, seq), True = may attend).
        token_type_ids: (batch, seq) segment ids, default 0. entity_ids: (batch, seq), 1 = part of
        an entity, 0 = not; required by an entity-aware model (entity_type_vocab_size > 0) only.
        (A keyword read from `extra`, so that the encoders built on this one, RoBERTa's and
        ELECTRA's, keep their signatures; other keywords are ignored, as before.)"""
        entity_ids: Tensor | None = extra.get("entity_ids")
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError("pass exactly one of input_ids or inputs_embeds")
        grid = input_ids if input_ids is not None else inputs_embeds[..., 0]  # type: ignore[index]
        if grid.dim() != 2:
            raise InputError(f"input_ids must have shape (batch, seq), got {tuple(grid.shape)}; "
                             "for one sentence use input_ids[None]")
        batch, seq_len = grid.shape
        self.check_inputs(input_ids, attention_mask, token_type_ids, seq_len)
        self.check_entity_ids(entity_ids, (batch, seq_len))
        device = grid.device
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch, seq_len, dtype=torch.long, device=device)
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=device).expand(batch, seq_len)

        # Padding: run dense layers on real tokens only (see module docstring).
        layout = mask = None
        if attention_mask is not None:
            if attention_mask.dim() == 2:
                if not bool(attention_mask.all()):
                    mask = padding_mask(attention_mask)
                    if self.unpad:
                        layout = TokenLayout.from_mask(attention_mask)
            else:  # (batch, query, key) or (batch, heads, query, key): used as given
                mask = attention_mask.bool() if attention_mask.dim() == 4 else attention_mask.bool()[:, None]

        def flat(t: Tensor | None) -> Tensor | None:
            return layout.unpad(t) if layout is not None and t is not None else t

        tokens, vectors = flat(input_ids), flat(inputs_embeds)
        if entity_ids is not None:  # the entity vectors join the token vectors before the other sums
            entities = layout.unpad(entity_ids) if layout is not None else entity_ids
            tokens, vectors = None, self.embeddings.with_entities(tokens, vectors, entities)
        x = self.embeddings(tokens, flat(token_type_ids), flat(position_ids), vectors)

        def grid_view(h: Tensor) -> Tensor:
            return layout.pad(h) if layout is not None else h

        hidden_states = [grid_view(x)] if output_hidden_states else None
        attentions: list[Tensor] | None = [] if output_attentions else None
        for block in self.layers:
            x, probs = block(x, mask, layout=layout, need_weights=output_attentions)
            if hidden_states is not None:
                hidden_states.append(grid_view(x))
            if attentions is not None:
                attentions.append(probs)
        if self.final_norm is not None:
            x = self.final_norm(x)
            if hidden_states is not None:
                hidden_states[-1] = grid_view(x)
        last = grid_view(x)
        pooled = self.pooler(last) if self.pooler is not None else None
        return BaseModelOutputWithPooling(
            last_hidden_state=last, pooler_output=pooled,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None)


class BertPooler(nn.Module):
    """tanh(W · h[CLS]): the sentence vector that next-sentence prediction was trained on."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))
