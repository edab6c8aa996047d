"""The encoder–decoder Transformer of "Attention Is All You Need", on the blocks BERT and GPT use.

    source ids ─► E·√d + positions ─► encoder block × N ──────────────┐ (keys/values of every
                                                                      ▼  cross-attention)
    target ids ─► E·√d + positions ─► decoder block × N (causal self-attention, cross-attention,
                                       feed-forward) ─► · Eᵀ + bias ─► next-token logits

The encoder is BERT's stack without segments; the decoder is GPT's with a cross-attention
sub-layer in every block (`TransformerBlock(context_size=...)`). With the paper's defaults one
embedding matrix E serves the source tokens, the target tokens and the output projection.
Checkpoints use the `MarianMTModel` layout (`checkpoint.py`); for generation the model follows
the encoder–decoder protocol of `hanformer.generation.search` (`get_encoder()`, then
`model(attention_mask=..., decoder_input_ids=..., encoder_outputs=..., past_key_values=...)`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hanformer.errors import InputError
from hanformer.generation.config import GenerationConfig
from hanformer.generation.search import decode_encoder_decoder
from hanformer.models.common.base import PreTrainedModel
from hanformer.models.common.dropout import Dropout
from hanformer.models.common.layers import (
    StaticKVCache,
    TokenLayout,
    TransformerBlock,
    causal_mask,
    padding_mask,
)
from hanformer.models.common.outputs import ModelOutput, encoder_hidden_state
from hanformer.models.encoder_decoder.cache import Seq2SeqCache
from hanformer.models.encoder_decoder.config import TransformerConfig
from hanformer.utils.config import load_config
from hanformer.utils.labels import IGNORE_INDEX


def sinusoidal_positions(num_positions: int, dim: int) -> Tensor:
    """The paper's sine/cosine table, laid out as Marian stores it: the sines of every frequency
    in the first half of the vector, the cosines in the second (the paper interleaves them; the
    two differ only by a fixed permutation of dimensions). Computed in float64 as transformers
    does, so the float32 table is bit-identical to Marian's."""
    position = np.arange(num_positions, dtype=np.float64)[:, None]
    angle = position / np.power(10000.0, 2 * (np.arange(dim) // 2) / dim)[None, :]
    return torch.from_numpy(np.concatenate([np.sin(angle[:, 0::2]), np.cos(angle[:, 1::2])], axis=1)).float()


@dataclass
class EncoderOutput(ModelOutput):
    last_hidden_state: Tensor
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class DecoderOutput(ModelOutput):
    last_hidden_state: Tensor
    past_key_values: Seq2SeqCache | None = None
    attentions: tuple[Tensor, ...] | None = None
    cross_attentions: tuple[Tensor, ...] | None = None
    """With output_attentions: per layer, (batch, heads, target, source) probabilities, 0 on padding."""


@dataclass
class Seq2SeqModelOutput(ModelOutput):
    last_hidden_state: Tensor
    past_key_values: Seq2SeqCache | None = None
    encoder_last_hidden_state: Tensor | None = None
    cross_attentions: tuple[Tensor, ...] | None = None


@dataclass
class Seq2SeqLMOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None
    past_key_values: Seq2SeqCache | None = None
    encoder_last_hidden_state: Tensor | None = None
    cross_attentions: tuple[Tensor, ...] | None = None
    """With output_attentions: per decoder layer, (batch, heads, target, source) probabilities."""


class _Stack(nn.Module):
    """What the encoder and the decoder share: scaled token embeddings + positions, dropout, the
    blocks, and with pre-LN the final LayerNorm."""

    sinusoidal: Tensor  # a buffer, registered when position_embedding_type is "sinusoidal"

    def __init__(self, config: TransformerConfig, token_embeddings: nn.Embedding, layers: int, heads: int,
                 ffn_dim: int, cross_attention: bool) -> None:
        super().__init__()
        d = config.d_model
        self.max_positions = config.max_position_embeddings
        self.token_embeddings = token_embeddings
        self.embed_scale = math.sqrt(d) if config.scale_embedding else 1.0
        if config.position_embedding_type == "learned":
            self.position_embeddings: nn.Embedding | None = nn.Embedding(config.max_position_embeddings, d)
        else:
            self.position_embeddings = None
            # Not a parameter and not saved: it is a function of the config.
            self.register_buffer("sinusoidal", sinusoidal_positions(config.max_position_embeddings, d),
                                 persistent=False)
        # BERT's (and BART's) LayerNorm of the summed embeddings, which an encoder started from
        # a BERT needs: its first block expects normalised input.
        self.embedding_norm = nn.LayerNorm(d, eps=config.layer_norm_eps) if config.normalize_embedding else None
        self.dropout = Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerBlock(d, heads, ffn_dim, act=config.activation_function, dropout=config.dropout,
                             attention_dropout=config.attention_dropout, layer_norm_eps=config.layer_norm_eps,
                             norm_placement=config.norm_placement, context_size=d if cross_attention else None,
                             layer_index=i)
            for i in range(layers))
        self.final_norm = nn.LayerNorm(d, eps=config.layer_norm_eps) if config.norm_placement == "pre" else None

    def embed(self, input_ids: Tensor, position_ids: Tensor) -> Tensor:
        x = self.token_embeddings(input_ids) * self.embed_scale
        if self.position_embeddings is not None:
            x = x + self.position_embeddings(position_ids)
        else:
            x = x + self.sinusoidal[position_ids].to(x.dtype)
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        return self.dropout(x)

    def check_ids(self, input_ids: Tensor, length: int, what: str) -> None:
        if input_ids.dim() != 2:
            raise InputError(f"{what} must have shape (batch, seq), got {tuple(input_ids.shape)}; "
                             "for one sentence use ids[None]")
        if length > self.max_positions:
            raise InputError(f"{what}: length {length} exceeds this model's {self.max_positions} positions "
                             "(max_position_embeddings); truncate the input")
        vocab = self.token_embeddings.num_embeddings
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab):
            bad = int(input_ids.min()) if int(input_ids.min()) < 0 else int(input_ids.max())
            raise InputError(f"{what}: token id {bad} is outside the vocabulary (size {vocab}); the tokenizer "
                             "does not match this model")

    def finish(self, x: Tensor) -> Tensor:
        return self.final_norm(x) if self.final_norm is not None else x


class TransformerEncoder(_Stack):
    """Source ids -> contextual vectors. Padded batches run their dense layers on the real tokens
    only (`TokenLayout`, as BERT's encoder); padding positions of the output are zeros."""

    def __init__(self, config: TransformerConfig, token_embeddings: nn.Embedding) -> None:
        super().__init__(config, token_embeddings, config.encoder_layers, config.encoder_attention_heads,
                         config.encoder_ffn_dim, cross_attention=False)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                output_attentions: bool = False, **_: Any) -> EncoderOutput:
        """input_ids: (batch, seq). attention_mask: (batch, seq), 1 = real token, 0 = padding."""
        self.check_ids(input_ids, input_ids.shape[-1], "input_ids")
        batch, seq_len = input_ids.shape
        positions = torch.arange(seq_len, device=input_ids.device).expand(batch, seq_len)
        layout = mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = padding_mask(attention_mask)
            if not output_attentions:  # probabilities need the (batch, seq) grid
                layout = TokenLayout.from_mask(attention_mask)
        if layout is not None:
            x = self.embed(layout.unpad(input_ids), layout.unpad(positions))
        else:
            x = self.embed(input_ids, positions)
        attentions: list[Tensor] = []
        for block in self.layers:
            x, probs = block(x, mask, layout=layout, need_weights=output_attentions)
            if probs is not None:
                attentions.append(probs)
        x = self.finish(x)
        return EncoderOutput(layout.pad(x) if layout is not None else x,
                             tuple(attentions) if output_attentions else None)


def _decoder_mask(attention_mask: Tensor | None, query_len: int, past: int) -> Tensor | None:
    """Boolean (batch, 1, query, key) causal mask that also hides padded target positions; None
    when causal masking alone suffices (no padding)."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    key_len = past + query_len
    if attention_mask.shape[-1] != key_len:
        raise InputError(f"decoder_attention_mask covers {attention_mask.shape[-1]} positions but the cache holds "
                         f"{past} and decoder_input_ids add {query_len}; pass the mask of the whole target")
    device = attention_mask.device
    allowed = attention_mask.bool()[:, None, None, :] & causal_mask(query_len, key_len, device)
    # A padding position may see itself, so that its softmax stays finite (its output is unused).
    q = torch.arange(query_len, device=device)[:, None]
    k = torch.arange(key_len, device=device)[None, :]
    return allowed | (k == q + past)


class TransformerDecoder(_Stack):
    """Target ids (shifted right) + encoder output -> vectors that predict the next target token."""

    def __init__(self, config: TransformerConfig, token_embeddings: nn.Embedding) -> None:
        super().__init__(config, token_embeddings, config.decoder_layers, config.decoder_attention_heads,
                         config.decoder_ffn_dim, cross_attention=True)

    def forward(self, input_ids: Tensor, encoder_hidden_states: Tensor, encoder_attention_mask: Tensor | None = None,
                attention_mask: Tensor | None = None, past_key_values: Seq2SeqCache | None = None,
                use_cache: bool = False, output_attentions: bool = False, **_: Any) -> DecoderOutput:
        """input_ids: (batch, seq) target ids; attention_mask: (batch, past + seq) over the target.
        With `use_cache`, keys/values are kept in `past_key_values` (created if absent) so the next
        call feeds only the new tokens; cross-attention keys/values are computed once per source."""
        past = len(past_key_values) if past_key_values is not None else 0
        seq_len = input_ids.shape[-1]
        self.check_ids(input_ids, past + seq_len, "decoder_input_ids")
        batch = input_ids.shape[0]
        if use_cache and past_key_values is None:
            past_key_values = Seq2SeqCache()
        cache = past_key_values if use_cache else None
        positions = torch.arange(past, past + seq_len, device=input_ids.device).expand(batch, seq_len)
        layout = None
        if cache is None and not output_attentions and attention_mask is not None and not bool(attention_mask.all()):
            # Teacher forcing on a padded target: the dense layers run on the real tokens only,
            # self-attention on length buckets (causal within each sentence), as the encoder does.
            layout = TokenLayout.from_mask(attention_mask)
            mask, is_causal = None, True
        else:
            mask = _decoder_mask(attention_mask, seq_len, past)
            is_causal = mask is None and seq_len > 1  # one new token may see every cached position
        context_mask = None
        if encoder_attention_mask is not None and not bool(encoder_attention_mask.all()):
            context_mask = padding_mask(encoder_attention_mask)
        if cache is not None and not cache.cross:
            for block in self.layers:
                assert isinstance(block, TransformerBlock) and block.cross_attention is not None  # every one has it
                cache.cross.append(block.cross_attention.context_keys_values(encoder_hidden_states))

        if layout is not None:
            x = self.embed(layout.unpad(input_ids), layout.unpad(positions))
        else:
            x = self.embed(input_ids, positions)
        attentions: list[Tensor] = []
        cross_attentions: list[Tensor] = []
        for i, block in enumerate(self.layers):
            if cache is not None:
                x, probs = block(x, mask, is_causal=is_causal, context_mask=context_mask,
                                 cache=cache.self_attention, context_kv=cache.cross[i],
                                 need_weights=output_attentions, cross_weights=cross_attentions)
            else:
                x, probs = block(x, mask, is_causal=is_causal, context=encoder_hidden_states,
                                 context_mask=context_mask, layout=layout, need_weights=output_attentions,
                                 cross_weights=cross_attentions)
            if probs is not None:
                attentions.append(probs)
        x = self.finish(x)
        return DecoderOutput(layout.pad(x) if layout is not None else x, cache,
                             tuple(attentions) if output_attentions else None,
                             tuple(cross_attentions) if output_attentions else None)


def shift_right(labels: Tensor, start_token_id: int, pad_token_id: int) -> Tensor:
    """Teacher forcing: the decoder reads [start] + labels[:-1] and predicts labels."""
    shifted = labels.new_full(labels.shape, start_token_id)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


class TransformerPreTrainedModel(PreTrainedModel):
    """What every encoder–decoder model shares: config, weight init, Marian save/load
    (the mapping lives in `checkpoint.py`)."""

    config_class = TransformerConfig
    config: TransformerConfig

    def init_weights(self) -> None:
        """Normal(0, init_std) projections and zero biases. With scaled embeddings the token
        vectors start at std d_model^-0.5 (fairseq's choice), so after the √d_model scale they
        have unit size, like the sinusoids they are added to."""
        std = self.config.init_std
        embedding_std = self.config.d_model ** -0.5 if self.config.scale_embedding else std
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=embedding_std)
                if module.padding_idx is not None:
                    with torch.no_grad():
                        module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


class TransformerModel(TransformerPreTrainedModel):
    """Encoder + decoder: returns the decoder's last hidden states (`MarianModel`)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        d, pad = config.d_model, config.pad_token_id
        source = nn.Embedding(config.vocab_size, d, padding_idx=pad)
        # One matrix for both sides when shared (the same module, so the same parameter).
        target = source if config.share_encoder_decoder_embeddings else \
            nn.Embedding(config.target_vocab_size, d, padding_idx=pad if pad < config.target_vocab_size else None)
        self.encoder = TransformerEncoder(config, source)
        self.decoder = TransformerDecoder(config, target)
        self.init_weights()

    def get_encoder(self) -> TransformerEncoder:
        return self.encoder

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                decoder_input_ids: Tensor | None = None, decoder_attention_mask: Tensor | None = None,
                encoder_outputs: Any = None, past_key_values: Seq2SeqCache | None = None,
                use_cache: bool = False, output_attentions: bool = False, **_: Any) -> Seq2SeqModelOutput:
        """input_ids / attention_mask: the (right-padded) source; decoder_input_ids: the target
        shifted right. `encoder_outputs` skips the encoder (decoding step by step).
        output_attentions: also return the decoder's cross-attention probabilities."""
        if encoder_outputs is None:
            if input_ids is None:
                raise InputError("pass the source as input_ids (or its encoding as encoder_outputs)")
            encoder_outputs = self.encoder(input_ids, attention_mask)
        if decoder_input_ids is None:
            raise InputError("pass decoder_input_ids (or labels, from which they are made by shifting right)")
        hidden = encoder_hidden_state(encoder_outputs)
        out = self.decoder(decoder_input_ids, hidden, attention_mask, decoder_attention_mask,
                           past_key_values, use_cache, output_attentions)
        return Seq2SeqModelOutput(out.last_hidden_state, out.past_key_values, hidden, out.cross_attentions)


class TransformerForSeq2SeqLM(TransformerPreTrainedModel):
    """TransformerModel + the output projection: next-target-token logits (`MarianMTModel`)."""

    final_logits_bias: Tensor  # (1, target vocab) buffer, as Marian stores it (zero unless converted)

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        self.model = TransformerModel(config)
        self.lm_head = None if config.tie_word_embeddings else \
            nn.Linear(config.d_model, config.target_vocab_size, bias=False)
        self.register_buffer("final_logits_bias", torch.zeros(1, config.target_vocab_size))
        if self.lm_head is not None:
            nn.init.normal_(self.lm_head.weight, std=config.init_std)

    def get_encoder(self) -> TransformerEncoder:
        return self.model.encoder

    def output_weight(self) -> Tensor:
        """The (target vocab, d_model) output projection: the target embeddings when tied."""
        return self.lm_head.weight if self.lm_head is not None else self.model.decoder.token_embeddings.weight

    def allocate_cache(self, batch_size: int, max_length: int) -> Seq2SeqCache:
        """A cache with room for `max_length` target positions (used by `hanformer.generation`)."""
        return Seq2SeqCache(StaticKVCache(min(max_length, self.config.max_position_embeddings)))

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                decoder_input_ids: Tensor | None = None, decoder_attention_mask: Tensor | None = None,
                encoder_outputs: Any = None, past_key_values: Seq2SeqCache | None = None,
                use_cache: bool = False, labels: Tensor | None = None, logits_to_keep: int = 0,
                output_attentions: bool = False, **_: Any) -> Seq2SeqLMOutput:
        """labels: (batch, target) ids; without decoder_input_ids the decoder reads them shifted
        right. The loss is cross-entropy with `config.label_smoothing` over the real target
        tokens (positions that hold -100 or the pad token do not count); with labels, `logits` is
        (real target tokens, vocab), the rows of `labels[real]` in order, not the padded grid.
        logits_to_keep: project only the last n positions onto the vocabulary (0 = all).
        output_attentions (without labels): also return the cross-attention probabilities."""
        if labels is None:
            out = self.model(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs,
                             past_key_values, use_cache, output_attentions)
            hidden = out.last_hidden_state[:, -logits_to_keep:] if logits_to_keep else out.last_hidden_state
            return Seq2SeqLMOutput(None, self._project(hidden), out.past_key_values, out.encoder_last_hidden_state,
                                   out.cross_attentions)
        if decoder_input_ids is None:
            decoder_input_ids = shift_right(labels, self.config.start_token_id, self.config.pad_token_id)
        real = (labels != self.config.pad_token_id) & (labels != IGNORE_INDEX)
        if decoder_attention_mask is None and bool((real[:, 1:] <= real[:, :-1]).all()):
            # The real targets are a prefix of every row: under the causal mask the padding after
            # them cannot change them, so the decoder may skip it (its dense layers run on the real tokens).
            decoder_attention_mask = real.long()
        out = self.model(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs)
        # Only the real target positions are projected onto the vocabulary (the largest matmul of a
        # step) and returned: padding them back to (batch, target, vocab) would cost more than the loss.
        logits = self._project(out.last_hidden_state[real])
        loss = F.cross_entropy(logits.float(), labels[real], label_smoothing=self.config.label_smoothing)
        return Seq2SeqLMOutput(loss, logits, None, out.encoder_last_hidden_state)

    def _project(self, hidden: Tensor) -> Tensor:
        return F.linear(hidden, self.output_weight(), self.final_logits_bias[0].to(hidden.dtype))  # one addmm

    def generate(self, input_ids: Tensor, attention_mask: Tensor | None = None, *,
                 generation_config: GenerationConfig | None = None, **settings: Any) -> Tensor:
        """Translate token ids, as `transformers`' `model.generate(...)` does: returns the decoder
        sequences, each starting with the decoder start token.

        `input_ids`: (batch, source) right-padded source ids (ending with EOS, as Marian's
        tokenizers encode them); `attention_mask` 1 = real token (default: ids != pad).
        Settings are `GenerationConfig` fields (`num_beams`, `max_new_tokens`, `length_penalty`,
        `early_stopping`, `num_return_sequences`, ...); EOS and padding come from the config.
        """
        values = dataclasses.asdict(generation_config) if generation_config is not None else {}
        config = load_config(GenerationConfig, {**values, **settings}, "generate")
        room = self.config.max_position_embeddings - 1
        if config.max_new_tokens > room:
            raise InputError(f"generate: max_new_tokens {config.max_new_tokens} exceeds the {room} target positions "
                             "this model has (max_position_embeddings - 1 for the start token)")
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        eos = config.eos_token_id if config.eos_token_id is not None else self.config.eos_token_id
        pad = config.pad_token_id if config.pad_token_id is not None else self.config.pad_token_id
        was_training = self.training
        self.eval()  # dropout off: generation is inference, whatever mode the model was left in
        try:
            out = decode_encoder_decoder(self, input_ids.to(self.device), attention_mask.to(self.device), config,
                                         decoder_start_token_id=self.config.start_token_id,
                                         eos_token_id=eos, pad_token_id=pad)
        finally:
            self.train(was_training)
        return out.sequences
