"""GPT: a decoder-only Transformer language model on the same blocks as BERT.

    input_ids ──► token + position embeddings ──► pre-LN block × N (causal) ──► LayerNorm ──► · Eᵀ ──► logits

What makes it GPT rather than BERT is three switches on the shared `TransformerBlock`:
attention is causal (position t sees positions <= t only, so it can be trained to predict
token t+1 at every position at once), LayerNorm comes before each sub-layer (pre-LN, as
GPT-2), and the output projection is the token embedding matrix itself (tied), so predicting
a token and reading one use the same vectors.

`GPTConfig` uses Hugging Face GPT-2 field names (`n_embd`, `n_layer`, ...) and checkpoints use
the `GPT2LMHeadModel` layout (see `models/gpt/checkpoint.py`), so models move both ways.
For generation the model follows the protocol of `hanformer.generation` (attention mask,
position ids, a key/value cache in and out).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hanformer.errors import ConfigError, InputError
from hanformer.generation.config import GenerationConfig
from hanformer.generation.search import decode
from hanformer.models.common.base import PreTrainedModel
from hanformer.models.common.dropout import Dropout
from hanformer.models.common.layers import (
    KVCache,
    StaticKVCache,
    TransformerBlock,
    TransposedWeight,
    causal_mask,
)
from hanformer.models.common.outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from hanformer.models.gpt.config import GPTConfig
from hanformer.utils.config import load_config
from hanformer.utils.labels import IGNORE_INDEX


class GPTPreTrainedModel(PreTrainedModel):
    """What every GPT model shares: config, GPT-2 weight init, Hugging Face GPT-2 save/load
    (the mapping lives in models/gpt/checkpoint.py)."""

    config_class = GPTConfig
    config: GPTConfig

    def init_weights(self) -> None:
        """GPT-2's init: normal(0, 0.02), and the projections that write into the residual
        stream scaled by 1/sqrt(2 * n_layer) so its variance does not grow with depth."""
        std = self.config.initializer_range
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                scale = 1 / math.sqrt(2 * self.config.n_layer) if name.endswith(("attention.out", "ffn.down")) else 1
                nn.init.normal_(module.weight, std=std * scale)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


class GPTModel(GPTPreTrainedModel):
    """The decoder stack: returns the final (normalised) hidden states and the updated cache."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.token_embeddings = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embeddings = nn.Embedding(config.n_positions, config.n_embd)
        self.dropout = Dropout(config.embd_pdrop)
        self.layers = nn.ModuleList(
            TransformerBlock(config.n_embd, config.n_head, config.intermediate_size,
                             act=config.activation_function, dropout=config.resid_pdrop,
                             attention_dropout=config.attn_pdrop, layer_norm_eps=config.layer_norm_epsilon,
                             norm_placement="pre", layer_index=i)
            for i in range(config.n_layer))
        self.final_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.init_weights()

    def _attention_mask(self, attention_mask: Tensor | None, query_len: int, past: int) -> Tensor | None:
        """Boolean (batch, 1, query, key) mask for padded batches; None when causal alone suffices."""
        if attention_mask is None or bool(attention_mask.all()):
            return None
        key_len = past + query_len
        if attention_mask.shape[-1] != key_len:
            raise InputError(f"attention_mask covers {attention_mask.shape[-1]} positions but the cache holds "
                             f"{past} and input_ids add {query_len}; pass the mask of the whole sequence")
        allowed = attention_mask.bool()[:, None, None, :] & causal_mask(query_len, key_len, attention_mask.device)
        # A padding position sees no real token before it; letting it see itself keeps its
        # softmax finite (no NaN), and no real position ever attends to it.
        q = torch.arange(query_len, device=attention_mask.device)[:, None]
        k = torch.arange(key_len, device=attention_mask.device)[None, :]
        return allowed | (k == q + past)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, position_ids: Tensor | None = None,
                past_key_values: KVCache | None = None, use_cache: bool = False, output_attentions: bool = False,
                output_hidden_states: bool = False, **_: Any) -> BaseModelOutputWithPast:
        """input_ids: (batch, seq). attention_mask: (batch, past + seq), 1 = real token, 0 = (left) padding.
        position_ids: (batch, seq), default past .. past + seq - 1 (pass cumsum(mask) - 1 with left padding).
        past_key_values: the cache of earlier positions; with use_cache a cache is created if absent."""
        if input_ids.dim() != 2:
            raise InputError(f"input_ids must have shape (batch, seq), got {tuple(input_ids.shape)}; "
                             "for one sequence use input_ids[None]")
        batch, seq_len = input_ids.shape
        past = len(past_key_values) if past_key_values is not None else 0
        if past + seq_len > self.config.n_positions:
            raise InputError(f"sequence length {past + seq_len} exceeds this model's context window of "
                             f"{self.config.n_positions} tokens (n_positions); truncate the input")
        if position_ids is None:
            position_ids = torch.arange(past, past + seq_len, device=input_ids.device).expand(batch, seq_len)
        if use_cache and past_key_values is None:
            past_key_values = KVCache()
        cache = past_key_values if use_cache else None

        mask = self._attention_mask(attention_mask, seq_len, past)
        # A single new token may see every cached position: no causal mask needed.
        is_causal = mask is None and seq_len > 1
        x = self.dropout(self.token_embeddings(input_ids) + self.position_embeddings(position_ids))
        hidden_states = [x] if output_hidden_states else None
        attentions: list[Tensor | None] | None = [] if output_attentions else None
        for block in self.layers:
            x, probs = block(x, mask, is_causal=is_causal, cache=cache, need_weights=output_attentions)
            if hidden_states is not None:
                hidden_states.append(x)
            if attentions is not None:
                attentions.append(probs)
        x = self.final_norm(x)
        if hidden_states is not None:
            hidden_states[-1] = x
        return BaseModelOutputWithPast(
            last_hidden_state=x, past_key_values=cache,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None)  # type: ignore[arg-type]


class GPTForCausalLM(GPTPreTrainedModel):
    """GPTModel + the tied language-model head: next-token logits at every position."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.transformer = GPTModel(config)
        self.decode_head = TransposedWeight()

    def _vocab_logits(self, hidden: Tensor) -> Tensor:
        """hidden · Eᵀ. When decoding a few tokens, multiply by a (hidden, vocab) copy of E instead.

        For one token the projection is a matrix-vector product that reads all of E; CPU BLAS
        streams a (hidden, vocab) layout two to three times faster than E's (vocab, hidden) rows,
        and this is the largest product of a decoding step (the same holds up to 16 rows here).
        The copy is made once and remade only when the embeddings change (`TransposedWeight`).
        """
        weight = self.transformer.token_embeddings.weight
        if not TransposedWeight.applies(hidden, 16, self.training):
            return F.linear(hidden, weight)
        return hidden @ self.decode_head.of(weight)

    def allocate_cache(self, batch_size: int, max_length: int) -> StaticKVCache:
        """A cache with room for `max_length` positions (used by `hanformer.generation`)."""
        return StaticKVCache(min(max_length, self.config.n_positions))

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, position_ids: Tensor | None = None,
                past_key_values: KVCache | None = None, use_cache: bool = False, labels: Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False, logits_to_keep: int = 0,
                **_: Any) -> CausalLMOutputWithPast:
        """labels: (batch, seq) usually the input ids themselves; position t is scored on predicting
        labels[t + 1] (the shift happens here, as in transformers); -100 positions are ignored.
        logits_to_keep: project only the last n positions onto the vocabulary (0 = all); generation
        needs only the last one, and the vocabulary projection is the largest matmul of a step."""
        out = self.transformer(input_ids, attention_mask, position_ids, past_key_values, use_cache,
                               output_attentions, output_hidden_states)
        hidden = out.last_hidden_state
        if logits_to_keep and labels is None:
            hidden = hidden[:, -logits_to_keep:]
        logits = self._vocab_logits(hidden)
        loss = None
        if labels is not None:
            shifted = labels[:, 1:]
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), shifted.reshape(-1),
                                   ignore_index=IGNORE_INDEX)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=out.past_key_values,
                                      hidden_states=out.hidden_states, attentions=out.attentions)

    def generate(self, input_ids: Tensor, attention_mask: Tensor | None = None, *,
                 generation_config: GenerationConfig | None = None, max_length: int | None = None,
                 **settings: Any) -> Tensor:
        """Continue token ids, as `transformers`' `model.generate(...)` does; returns prompt + new ids.

        `input_ids`: (batch, prompt) LongTensor, left-padded when prompts differ in length.
        `attention_mask`: 1 = real token, 0 = padding; without one, positions equal to
        `pad_token_id` are padding (unless the pad token is also the EOS token), as in transformers.
        Settings are `GenerationConfig` fields (`max_new_tokens`, `do_sample`, `temperature`,
        `top_k`, `top_p`, `num_beams`, `num_return_sequences`, `repetition_penalty`,
        `no_repeat_ngram_size`, `length_penalty`, `early_stopping`, `eos_token_id`,
        `pad_token_id`, `seed`, `use_cache`, ...), given one by one and/or as `generation_config`;
        `max_length` (prompt + new tokens) is accepted for transformers' sake, `max_new_tokens`
        wins when both are given; without either, up to GenerationConfig's 50 new tokens, fewer
        where the context window ends first (a length asked for that does not fit is an error).
        EOS and padding default to the model's config (an explicit `eos_token_id=None` turns EOS
        off, as in transformers); rows that end early are filled with the pad token (EOS when
        there is none). Decoding is `hanformer.generation.search.decode`, which matches
        transformers token for token.
        """
        prompt = self._check_prompt(input_ids)
        config = self._generation_config(generation_config, settings, max_length, prompt.shape[1])
        eos, pad = (self._special_token(name, config, settings) for name in ("eos_token_id", "pad_token_id"))
        if attention_mask is None:
            attention_mask = _infer_attention_mask(prompt, pad if pad is not None else eos, eos)
        elif attention_mask.shape != prompt.shape:
            raise InputError(f"generate: attention_mask has shape {tuple(attention_mask.shape)} but input_ids "
                             f"{tuple(prompt.shape)}; pass one mask value per token")
        was_training = self.training
        self.eval()  # dropout off: generation is inference, whatever mode the model was left in
        try:
            out = decode(self, prompt, attention_mask.to(prompt.device), config, eos_token_id=eos, pad_token_id=pad)
        finally:
            self.train(was_training)
        return out.sequences

    def _special_token(self, name: str, config: GenerationConfig, settings: dict[str, Any]) -> int | None:
        """A keyword given explicitly wins, None included (`eos_token_id=None`: no EOS, as in
        transformers); otherwise the generation config's value, else the model's."""
        value = getattr(config, name)
        if name in settings or value is not None:
            return value
        return getattr(self.config, name)

    def _check_prompt(self, input_ids: Tensor) -> Tensor:
        if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            shape = tuple(input_ids.shape) if isinstance(input_ids, Tensor) else type(input_ids).__name__
            raise InputError(f"generate: input_ids must be a (batch, length) tensor of token ids, got {shape}; "
                             "for one prompt use input_ids[None]")
        if input_ids.shape[1] == 0:
            raise InputError("generate: input_ids holds no tokens; start a prompt from the model's bos_token_id")
        if int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size:
            bad = int(input_ids.min()) if int(input_ids.min()) < 0 else int(input_ids.max())
            raise InputError(f"generate: token id {bad} is outside the vocabulary (vocab_size "
                             f"{self.config.vocab_size}); encode prompts with this model's tokenizer")
        return input_ids.long().to(self.device)

    def _generation_config(self, base: GenerationConfig | None, settings: dict[str, Any], max_length: int | None,
                           prompt_length: int) -> GenerationConfig:
        """`base` with `settings` applied (unknown names are errors that suggest the right one)."""
        values = dataclasses.asdict(base) if base is not None else {}
        if max_length is not None and "max_new_tokens" not in settings:
            if max_length <= prompt_length:
                raise ConfigError(f"generate: max_length = {max_length} leaves no room after the prompt of "
                                  f"{prompt_length} tokens; max_length counts the prompt, use max_new_tokens")
            settings = {**settings, "max_new_tokens": max_length - prompt_length}
        room = self.config.n_positions - prompt_length
        if base is None and "max_new_tokens" not in settings and 0 < room < GenerationConfig.max_new_tokens:
            settings = {**settings, "max_new_tokens": room}  # the default length, fitted to the context window
        config = load_config(GenerationConfig, {**values, **settings}, "generate")
        if config.stop_strings:  # text-level: ids alone cannot be matched against strings
            raise ConfigError("generate: stop_strings need the tokenizer; use hanformer.generation.generate(model, "
                              "prompts, tokenizer=..., stop_strings=[...]) for text, or stop on eos_token_id")
        if room < 1:
            raise InputError(f"generate: the prompt of {prompt_length} tokens leaves no room in this model's context "
                             f"window of {self.config.n_positions} tokens (n_positions); keep its last "
                             f"{self.config.n_positions - 1} tokens or fewer")
        if config.max_new_tokens > room:
            raise InputError(f"generate: a prompt of {prompt_length} tokens + max_new_tokens {config.max_new_tokens} "
                             f"exceeds this model's context window of {self.config.n_positions} tokens "
                             f"(n_positions); lower max_new_tokens to {room} or shorten the prompt")
        return config


def _infer_attention_mask(input_ids: Tensor, pad: int | None, eos: int | None) -> Tensor:
    """transformers' rule without an attention mask: pad tokens are padding, unless pad is EOS
    (then a pad-coloured token may be a real EOS, and every position counts)."""
    if pad is not None and pad != eos and bool((input_ids == pad).any()):
        return (input_ids != pad).long()
    return torch.ones_like(input_ids)
