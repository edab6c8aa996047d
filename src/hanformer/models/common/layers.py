"""Transformer building blocks shared by BERT (encoder), GPT (decoder) and encoder-decoders.

* `MultiHeadAttention`: fused Q/K/V projection (one matmul instead of three), PyTorch's
  `scaled_dot_product_attention` kernel, boolean masks (True = may attend) that broadcast to
  (batch, heads, query, key), causal masking, optional cross-attention over a `context`,
  a key/value cache for incremental decoding, and explicit probabilities when asked
  (the fused kernel never materialises them).
* `FeedForward`: Linear -> activation -> Linear.
* `TransposedWeight`, `DecodeLinear`: an (in, out) copy of a weight for the one-row products of
  decoding, which CPU BLAS streams faster than nn.Linear's (out, in) layout for most shapes.
* `TransformerBlock`: attention (+ optional cross-attention) + feed-forward, each wrapped in a
  residual connection with LayerNorm after it (post-LN, BERT) or before the sub-layer (pre-LN, GPT-2).
* `TokenLayout`: where the real tokens of a padded batch are. Dense layers (projections,
  feed-forward, LayerNorm) run on the real tokens only, packed as (tokens, hidden); only
  attention, which needs sequences, sees a padded grid: per length bucket, each padded only to
  its bucket's longest sentence (`models/common/unpad.py`), or the (batch, seq) grid when attention
  probabilities, a cache or a causal mask are asked for. Results are the same as computing on
  the padded batch; the work on padding is simply skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hanformer.models.common.dropout import Dropout, dropout
from hanformer.models.common.sdpa import scaled_dot_product_attention
from hanformer.models.common.unpad import AttentionBuckets, bucketed_attention


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation called `name` in Hugging Face configs."""
    if name == "gelu":
        return F.gelu  # exact (erf) GELU, as in BERT
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")  # GPT-2's tanh approximation
    if name == "relu":
        return F.relu
    if name in ("silu", "swish"):
        return F.silu
    if name == "tanh":
        return torch.tanh
    raise ValueError(f"unknown activation {name!r}")


# --- masks ------------------------------------------------------------------------------

def padding_mask(attention_mask: Tensor) -> Tensor:
    """(batch, key) 1/0 mask -> boolean (batch, 1, 1, key): every query may see every real key."""
    return attention_mask.bool()[:, None, None, :]


def masked_mean(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """(batch, seq, hidden) -> (batch, hidden): the mean over real tokens (1 in the (batch, seq) mask)."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def causal_mask(query_len: int, key_len: int, device: torch.device | str | None = None) -> Tensor:
    """Boolean (query, key) mask where query i sees keys up to its own position.

    Queries are aligned to the *end* of the keys, so with `key_len - query_len` cached
    positions in front, the first new query sees all of them (what incremental decoding needs;
    SDPA's own `is_causal` aligns to the start instead).
    """
    offset = key_len - query_len
    q = torch.arange(query_len, device=device)[:, None]
    k = torch.arange(key_len, device=device)[None, :]
    return k <= q + offset


@dataclass
class TokenLayout:
    """The real (non-padding) tokens of a (batch, seq) grid, for computing on them alone."""

    indices: Tensor  # (tokens,) flat positions batch * seq_len + position of the real tokens
    batch_size: int
    seq_len: int
    # Length buckets for attention without re-padding to the longest sentence (models/common/unpad.py).
    buckets: AttentionBuckets | None = None

    @classmethod
    def from_mask(cls, attention_mask: Tensor, max_buckets: int = 4) -> TokenLayout:
        """max_buckets: attention runs on up to this many length buckets (0: re-pad to the longest)."""
        indices = attention_mask.reshape(-1).nonzero().squeeze(1)
        buckets = AttentionBuckets.from_lengths(attention_mask.sum(1), max_buckets) if max_buckets else None
        return cls(indices, attention_mask.shape[0], attention_mask.shape[1], buckets)

    @property
    def num_tokens(self) -> int:
        return self.indices.numel()

    def unpad(self, x: Tensor) -> Tensor:
        """(batch, seq, ...) -> (tokens, ...)."""
        return x.reshape(self.batch_size * self.seq_len, *x.shape[2:]).index_select(0, self.indices)

    def pad(self, x: Tensor) -> Tensor:
        """(tokens, ...) -> (batch, seq, ...) with zeros at padding."""
        # In-place index_put_ into fresh zeros: no copy of the zeros, still differentiable w.r.t. x
        # (and about twice as fast as index_copy on CPU).
        out = x.new_zeros(self.batch_size * self.seq_len, *x.shape[1:]).index_put_((self.indices,), x)
        return out.view(self.batch_size, self.seq_len, *x.shape[1:])


# --- key/value cache ----------------------------------------------------------------------

class KVCache:
    """Keys and values of the positions seen so far, one entry per layer.

    Incremental decoding feeds only the new tokens; each attention layer appends their keys
    and values here and attends over everything cached. Any object with the same `update`
    method (e.g. a preallocated or paged cache) can be passed instead.
    """

    def __init__(self) -> None:
        self.keys: list[Tensor] = []
        self.values: list[Tensor] = []

    def __len__(self) -> int:
        """Number of cached positions."""
        return self.keys[0].shape[2] if self.keys else 0

    def update(self, layer_index: int, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Append (batch, heads, new, head_dim) keys/values; return all of this layer's."""
        if layer_index == len(self.keys):
            self.keys.append(key)
            self.values.append(value)
        else:
            self.keys[layer_index] = torch.cat([self.keys[layer_index], key], dim=2)
            self.values[layer_index] = torch.cat([self.values[layer_index], value], dim=2)
        return self.keys[layer_index], self.values[layer_index]

    def reorder(self, beam_indices: Tensor) -> None:
        """Keep the batch rows `beam_indices` (beam search picks which hypotheses survive)."""
        self.keys = [k.index_select(0, beam_indices) for k in self.keys]
        self.values = [v.index_select(0, beam_indices) for v in self.values]

    def select_rows(self, rows: Tensor) -> None:
        """Keep only the batch rows `rows` (fewer than now: sequences whose search has ended)."""
        KVCache.reorder(self, rows)


class StaticKVCache(KVCache):
    """A KVCache whose buffers hold `max_length` positions from the start.

    Appending writes the new positions in place instead of concatenating (which copies the
    whole history at every decoding step); attention reads a view of the filled part. Buffers
    are created at the first update of each layer, so only `max_length` must be known upfront.
    """

    def __init__(self, max_length: int) -> None:
        super().__init__()
        self.max_length = max_length
        self.lengths: list[int] = []

    def __len__(self) -> int:
        return self.lengths[0] if self.lengths else 0

    def update(self, layer_index: int, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        if layer_index == len(self.keys):
            b, h, _, d = key.shape
            self.keys.append(key.new_empty(b, h, self.max_length, d))
            self.values.append(value.new_empty(b, h, self.max_length, d))
            self.lengths.append(0)
        start = self.lengths[layer_index]
        end = start + key.shape[2]
        if end > self.max_length:
            raise ValueError(f"StaticKVCache holds {self.max_length} positions; {end} requested")
        self.keys[layer_index][:, :, start:end] = key
        self.values[layer_index][:, :, start:end] = value
        self.lengths[layer_index] = end
        return self.keys[layer_index][:, :, :end], self.values[layer_index][:, :, :end]

    def reorder(self, beam_indices: Tensor) -> None:
        """Keep the batch rows `beam_indices` (as many as now), moving only the filled positions
        (the buffers hold `max_length`, often many times more than has been generated so far)."""
        for buffers in (self.keys, self.values):
            for layer, buffer in enumerate(buffers):
                filled = buffer[:, :, :self.lengths[layer]]
                filled.copy_(filled.index_select(0, beam_indices))


# --- decoding: products with a row or two -------------------------------------------------

class TransposedWeight(nn.Module):
    """A contiguous (in, out) copy of an (out, in) weight, for inference products with few rows.

    Decoding multiplies one new token per sequence by every weight matrix: matrix-vector
    products that stream the weights from memory, and for most shapes CPU BLAS streams an
    (in, out) matrix faster than nn.Linear's (out, in) rows (benchmarks/README.md). The copy is
    made at the first such product and remade only when the weight changes: an optimizer step or
    `load_state_dict` bumps its version counter, casting gives it new storage. The copy is a plain
    tensor attribute, never a parameter or buffer, so checkpoints do not see it; `train()` and moving
    or casting the model drop it, so only a model in eval mode that has decoded holds copies.
    """

    def __init__(self) -> None:
        super().__init__()
        self._key: tuple | None = None
        self._copy: Tensor | None = None

    def of(self, weight: Tensor) -> Tensor:
        key = (weight.data_ptr(), weight._version, weight.dtype)
        if self._copy is None or self._key != key:
            self._copy = None  # free the stale copy before allocating its replacement
            self._copy, self._key = weight.detach().t().contiguous(), key
        return self._copy

    def clear(self) -> None:
        self._copy, self._key = None, None

    def train(self, mode: bool = True) -> TransposedWeight:
        if mode:
            self.clear()
        return super().train(mode)

    def _apply(self, fn: Callable, recurse: bool = True) -> TransposedWeight:  # .to(), .half(), ...
        self.clear()
        return self

    def __getstate__(self) -> dict:  # copy.deepcopy / pickle: the copy is remade on demand
        return {**self.__dict__, "_key": None, "_copy": None}

    @staticmethod
    def applies(x: Tensor, max_rows: int, training: bool) -> bool:
        """Whether a product of `x` should use the copy: inference, CPU, at most `max_rows` rows."""
        return (not training and not torch.is_grad_enabled() and x.device.type == "cpu"
                and x.numel() <= max_rows * x.shape[-1])


class DecodeLinear(nn.Linear):
    """nn.Linear that multiplies one or two rows (batch-1 decoding) by an (in, out) copy of its weight.

    Measured with weights streamed from memory (1 thread, 512 and 768 wide): the copy is
    1.2-1.7x faster for one or two rows on the fused Q/K/V, attention output and feed-forward
    up-projections, but 0.8x on the down-projection and no gain from four rows on; so only the
    first three use this class, and only for up to 2 rows. Weights under 1 MiB (the tiny
    preset's) stay in the CPU caches between steps, where the copy gains less than the extra
    Python work of this path costs, so they never use it. Training and full-sequence passes use
    the ordinary weight and never make the copy.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.max_rows = 2 if in_features * out_features >= 1 << 18 else 0
        self.transposed = TransposedWeight()

    def forward(self, x: Tensor) -> Tensor:
        if self.max_rows and TransposedWeight.applies(x, self.max_rows, self.training):
            rows = x.reshape(-1, x.shape[-1])
            weight = self.transposed.of(self.weight)
            out = torch.addmm(self.bias, rows, weight) if self.bias is not None else rows @ weight
            return out.view(*x.shape[:-1], out.shape[-1])
        return F.linear(x, self.weight, self.bias)


# --- attention ----------------------------------------------------------------------------

class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention.

    Self-attention projects Q, K and V with one fused Linear (`qkv`, rows ordered Q, K, V).
    Cross-attention (`context_size` given) projects queries from the input and keys/values
    from `context` (e.g. encoder states), with `query` and `key_value` Linears.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 context_size: int | None = None, layer_index: int = 0) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.dropout = dropout
        self.layer_index = layer_index
        self.is_cross_attention = context_size is not None
        if context_size is not None:
            self.query = nn.Linear(hidden_size, hidden_size, bias=bias)
            self.key_value = nn.Linear(context_size, 2 * hidden_size, bias=bias)
        else:
            self.qkv = DecodeLinear(hidden_size, 3 * hidden_size, bias=bias)
        self.out = DecodeLinear(hidden_size, hidden_size, bias=bias)

    def _heads(self, x: Tensor) -> Tensor:
        """(batch, seq, n * heads * head_dim) -> n tensors of (batch, heads, seq, head_dim)."""
        b, s, _ = x.shape
        return x.view(b, s, -1, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)

    def context_keys_values(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention: the (batch, heads, context, head_dim) keys and values of `context`.

        They depend on the context alone, so incremental decoding computes them once per source
        and passes them back as `context_kv` at every step."""
        k, v = self._heads(self.key_value(context))
        return k, v

    def forward(self, x: Tensor, mask: Tensor | None = None, *, is_causal: bool = False,
                context: Tensor | None = None, layout: TokenLayout | None = None,
                cache: KVCache | None = None, need_weights: bool = False,
                context_kv: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor | None]:
        """Attend from `x` to itself (or to `context`).

        x: (batch, seq, hidden), or (tokens, hidden) real tokens only when `layout` is given.
        mask: boolean, True where a query may attend a key; broadcastable to (batch, heads, q, k).
        is_causal: also forbid attending to later positions.
        cache: append this call's keys/values to it and attend over all cached positions.
        need_weights: also return the (batch, heads, q, k) probabilities (slower, exact path).
        context_kv: cross-attention keys/values already computed by `context_keys_values`.
        Returns the output (same layout as `x`) and the probabilities or None.
        """
        if self.is_cross_attention:
            if context_kv is None:
                if context is None:
                    raise ValueError("cross-attention needs a context")
                context_kv = self.context_keys_values(context)
            q = self.query(x)
            q = layout.pad(q) if layout is not None else q
            (q,) = self._heads(q)
            k, v = context_kv
        else:
            qkv = self.qkv(x)
            if layout is not None and layout.buckets is not None and cache is None and not need_weights:
                # Each sentence attends to itself, padded only to its bucket's longest (models/common/unpad.py).
                out = bucketed_attention(qkv, layout.buckets, self.num_heads, self.dropout if self.training else 0.0,
                                         is_causal=is_causal)
                return self.out(out), None
            qkv = layout.pad(qkv) if layout is not None else qkv
            q, k, v = self._heads(qkv)
        if cache is not None:
            k, v = cache.update(self.layer_index, k, v)

        q_len, k_len = q.shape[2], k.shape[2]
        if is_causal and (mask is not None or q_len != k_len or need_weights):
            causal = causal_mask(q_len, k_len, q.device)
            mask = causal if mask is None else mask & causal
            is_causal = False

        p_drop = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            probs = scores.softmax(dim=-1)
            out = dropout(probs, p_drop, self.training) @ v
        else:
            probs = None
            out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop, is_causal=is_causal)

        b = out.shape[0]
        out = out.transpose(1, 2).reshape(b, q_len, -1)
        if layout is not None:
            out = layout.unpad(out)
        return self.out(out), probs


class FeedForward(nn.Module):
    """Position-wise feed-forward network: up-projection, activation, down-projection."""

    def __init__(self, hidden_size: int, intermediate_size: int, act: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        self.up = DecodeLinear(hidden_size, intermediate_size, bias=bias)
        self.down = nn.Linear(intermediate_size, hidden_size, bias=bias)  # (out, in) is faster even for one row
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.act(self.up(x)))


class TransformerBlock(nn.Module):
    """One Transformer layer: self-attention, optional cross-attention, feed-forward.

    `norm_placement="post"`: x = LN(x + dropout(sublayer(x)))   (BERT, original Transformer)
    `norm_placement="pre"`:  x = x + dropout(sublayer(LN(x)))   (GPT-2; stack ends with a final LN)
    """

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, *, act: str = "gelu",
                 dropout: float = 0.1, attention_dropout: float = 0.1, layer_norm_eps: float = 1e-12,
                 norm_placement: str = "post", context_size: int | None = None, bias: bool = True,
                 layer_index: int = 0) -> None:
        super().__init__()
        self.pre_norm = norm_placement == "pre"
        self.attention = MultiHeadAttention(hidden_size, num_heads, attention_dropout, bias, layer_index=layer_index)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        if context_size is not None:
            self.cross_attention: MultiHeadAttention | None = MultiHeadAttention(
                hidden_size, num_heads, attention_dropout, bias, context_size=context_size,
                layer_index=layer_index)
            self.cross_attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        else:
            self.cross_attention = None
        self.ffn = FeedForward(hidden_size, intermediate_size, act, bias)
        self.ffn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = Dropout(dropout)

    def _residual(self, x: Tensor, norm: nn.LayerNorm, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        if self.pre_norm:
            return x + self.dropout(sublayer(norm(x)))
        return norm(x + self.dropout(sublayer(x)))

    def forward(self, x: Tensor, mask: Tensor | None = None, *, is_causal: bool = False,
                layout: TokenLayout | None = None, context: Tensor | None = None,
                context_mask: Tensor | None = None, cache: KVCache | None = None,
                need_weights: bool = False,
                context_kv: tuple[Tensor, Tensor] | None = None,
                cross_weights: list[Tensor] | None = None) -> tuple[Tensor, Tensor | None]:
        """x: (batch, seq, hidden), or (tokens, hidden) with `layout`. Returns (x, attention probs).
        context_kv: the cross-attention's keys/values of `context`, computed once per source.
        cross_weights: with need_weights, the cross-attention probabilities are appended to it
        (the return value holds the self-attention ones, as for blocks without cross-attention)."""
        probs: Tensor | None = None

        def self_attention(h: Tensor) -> Tensor:
            nonlocal probs
            out, probs = self.attention(h, mask, is_causal=is_causal, layout=layout, cache=cache,
                                        need_weights=need_weights)
            return out

        x = self._residual(x, self.attention_norm, self_attention)
        if self.cross_attention is not None and (context is not None or context_kv is not None):
            cross = self.cross_attention

            def cross_attention(h: Tensor) -> Tensor:
                out, weights = cross(h, context_mask, context=context, layout=layout, context_kv=context_kv,
                                     need_weights=need_weights)
                if weights is not None and cross_weights is not None:
                    cross_weights.append(weights)
                return out

            x = self._residual(x, self.cross_attention_norm, cross_attention)
        x = self._residual(x, self.ffn_norm, self.ffn)
        return x, probs
