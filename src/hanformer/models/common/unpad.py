"""Attention over packed variable-length sequences, without re-padding to the longest one.

Unpadded BERT keeps a batch's real tokens packed as (tokens, hidden) for every dense layer.
Attention needs whole sentences, and re-padding everything to the longest sentence makes it
cost batch x longest² again (with lengths spread evenly, about 2.6x the real work, plus the
same factor in dropout masks and softmax passes). Here the sentences are sorted by length
and cut into a few buckets; each bucket is padded only to its own longest sentence and
attended with one fused `scaled_dot_product_attention` call. Buckets are chosen by a small
dynamic program that minimises sum(rows x width²) — the attention work — over at most
`max_buckets` calls (few calls keep per-call overhead and matrix shapes efficient).

The result equals attention on the padded batch at every real token: each query sees exactly
the real keys of its own sentence either way. All index bookkeeping is done once per
forward (`AttentionBuckets.from_lengths`) and shared by every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from hanformer.models.common.sdpa import scaled_dot_product_attention


def plan_buckets(lengths: list[int], max_buckets: int) -> list[list[int]]:
    """Group row indices (sorted longest first) so that sum(rows x width²) is smallest."""
    rows = sorted((r for r, n in enumerate(lengths) if n > 0), key=lambda r: -lengths[r])
    n = len(rows)
    if n == 0:
        return []
    k_max = max(1, min(max_buckets, n))
    widths = [lengths[r] for r in rows]  # non-increasing
    inf = float("inf")
    # best[k][j]: minimal cost of covering rows[:j] with k buckets; a bucket rows[i:j] costs (j-i) * widths[i]².
    best = [[inf] * (n + 1) for _ in range(k_max + 1)]
    cut = [[0] * (n + 1) for _ in range(k_max + 1)]
    best[0][0] = 0.0
    for k in range(1, k_max + 1):
        for j in range(1, n + 1):
            for i in range(k - 1, j):
                cost = best[k - 1][i] + (j - i) * widths[i] ** 2
                if cost < best[k][j]:
                    best[k][j], cut[k][j] = cost, i
    k = min(range(1, k_max + 1), key=lambda kk: best[kk][n])
    groups, j = [], n
    while k > 0:
        i = cut[k][j]
        groups.append(rows[i:j])
        j, k = i, k - 1
    return groups[::-1]


class _TakeRows(torch.autograd.Function):
    """x[index] for an index without repeats; the gradient is a copy back, not a scatter-add.

    (index_select's own backward accumulates with scatter-add, which is slow on CPU.)
    """

    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        ctx.rows = x.shape[0]
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (index,) = ctx.saved_tensors
        return grad.new_zeros(ctx.rows, *grad.shape[1:]).index_copy_(0, index, grad), None


class _PutRows(torch.autograd.Function):
    """A (rows, ...) tensor of zeros with x written at `index` (no repeats); gradient: a gather."""

    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor, rows: int) -> Tensor:
        ctx.save_for_backward(index)
        return x.new_zeros(rows, *x.shape[1:]).index_copy_(0, index, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (index,) = ctx.saved_tensors
        return grad.index_select(0, index), None, None


def take_rows(x: Tensor, index: Tensor) -> Tensor:
    return _TakeRows.apply(x, index)


def put_rows(x: Tensor, index: Tensor, rows: int) -> Tensor:
    return _PutRows.apply(x, index, rows)


@dataclass
class AttentionBuckets:
    """Which tokens each bucket's (rows, width) grid holds, and where they sit in it."""

    order: Tensor  # (tokens,): packed token indices, bucket by bucket (a permutation)
    restore: Tensor  # (tokens,): the inverse permutation
    counts: list[int]  # per bucket: number of real tokens (its slice of `order`)
    shapes: list[tuple[int, int]]  # per bucket: (rows, width)
    slots: list[Tensor]  # per bucket: flat grid positions of its real tokens, in `order` order
    masks: list[Tensor | None]  # per bucket: (rows, 1, 1, width) True = real key; None if no padding
    num_tokens: int
    # Inference layout: per bucket, the packed token behind every grid position (a padding slot
    # repeats its row's last token); and each packed token's position in the buckets' grids, end to end.
    gathers: list[Tensor]
    scatter: Tensor

    @classmethod
    def from_lengths(cls, lengths: Tensor, max_buckets: int = 4) -> AttentionBuckets:
        """lengths: (batch,) real tokens per row; the packed layout holds row 0's tokens, then row 1's..."""
        device = lengths.device
        host = [int(n) for n in lengths.tolist()]
        starts, total = [], 0
        for n in host:
            starts.append(total)
            total += n
        orders, counts, shapes, slots, masks, gathers, grid_positions = [], [], [], [], [], [], []
        offset = 0
        for group in plan_buckets(host, max_buckets):
            width = host[group[0]]
            lens = torch.tensor([host[r] for r in group], device=device)
            first = torch.tensor([starts[r] for r in group], device=device)
            pos = torch.arange(width, device=device)
            real = pos[None, :] < lens[:, None]
            slot = real.reshape(-1).nonzero().squeeze(1)
            orders.append((first[:, None] + pos[None, :]).reshape(-1).index_select(0, slot))
            counts.append(slot.numel())
            shapes.append((len(group), width))
            slots.append(slot)
            full = all(host[r] == width for r in group)  # decided on the host: no device sync
            masks.append(None if full else real[:, None, None, :])
            gathers.append((first[:, None] + torch.minimum(pos[None, :], lens[:, None] - 1)).reshape(-1))
            grid_positions.append(offset + slot)
            offset += len(group) * width
        empty = torch.zeros(0, dtype=torch.long, device=device)
        order = torch.cat(orders) if orders else empty
        restore = torch.empty_like(order)
        restore[order] = torch.arange(order.numel(), device=device)
        scatter = (torch.cat(grid_positions) if grid_positions else empty)[restore]
        return cls(order, restore, counts, shapes, slots, masks, total, gathers, scatter)


def bucketed_attention(qkv: Tensor, buckets: AttentionBuckets, num_heads: int, dropout_p: float = 0.0,
                       scale: float | None = None, is_causal: bool = False) -> Tensor:
    """Self-attention within each sequence of a packed batch.

    qkv: (tokens, 3 * hidden), the fused projection (Q, K, V blocks, heads inside each).
    is_causal: each token attends to the earlier tokens of its sequence only. A sequence's tokens
    fill its grid row from the left, so causality alone already keeps every real query off the
    padding slots after it: no padding mask is needed.
    Returns (tokens, hidden), the heads' outputs concatenated, in packed order.
    """
    hidden = qkv.shape[1] // 3
    head_dim = hidden // num_heads
    if dropout_p == 0.0 and not (torch.is_grad_enabled() and qkv.requires_grad):
        return _bucketed_attention_inference(qkv, buckets, num_heads, scale, is_causal)
    by_bucket = take_rows(qkv, buckets.order).split(buckets.counts)
    outs = []
    for part, (rows, width), slot, mask in zip(by_bucket, buckets.shapes, buckets.slots, buckets.masks,
                                               strict=True):
        grid = put_rows(part, slot, rows * width) if mask is not None else part
        q, k, v = grid.view(rows, width, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4)
        out = scaled_dot_product_attention(q, k, v, attn_mask=None if is_causal else mask, dropout_p=dropout_p,
                                             scale=scale, is_causal=is_causal)
        out = out.transpose(1, 2).reshape(rows * width, hidden)
        outs.append(take_rows(out, slot) if mask is not None else out)
    if not outs:
        return qkv.new_zeros(0, hidden)
    return take_rows(torch.cat(outs), buckets.restore)


def _bucketed_attention_inference(qkv: Tensor, buckets: AttentionBuckets, num_heads: int,
                                  scale: float | None, is_causal: bool) -> Tensor:
    """`bucketed_attention` without gradients, in fewer memory passes: each bucket's grid is
    gathered straight from the packed tokens, its padding slots repeating a real token of their
    row (masked out as keys, dropped as queries), so there is no zero-filled grid to scatter into;
    one gather puts the outputs back in packed order. Training keeps the scatter layout: repeated
    rows would need a scatter-add in the backward pass, which is slow on CPU."""
    hidden = qkv.shape[1] // 3
    head_dim = hidden // num_heads
    outs = []
    for gather, (rows, width), mask in zip(buckets.gathers, buckets.shapes, buckets.masks, strict=True):
        grid = qkv.index_select(0, gather)
        q, k, v = grid.view(rows, width, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if is_causal else mask, scale=scale,
                                             is_causal=is_causal)
        outs.append(out.transpose(1, 2).reshape(rows * width, hidden))
    if not outs:
        return qkv.new_zeros(0, hidden)
    return torch.cat(outs).index_select(0, buckets.scatter)
