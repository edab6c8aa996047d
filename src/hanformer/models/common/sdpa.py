"""Scaled dot-product attention: torch's kernels, except for two CPU cases.

* Training with dropout: with `dropout_p > 0` torch's CPU attention leaves its fused kernel for
  the math path (scores, softmax, a Bernoulli mask on the probabilities, then the values). This
  module does the same math with the cheaper dropout mask of `dropout.py`, and without the extra
  passes torch spends there on rows that are masked out entirely.
* One query per row, as every step of incremental decoding has, in many rows: torch's fused CPU
  kernel pays a fixed bookkeeping cost per (row, head) that outweighs the arithmetic of a single
  query, so two batched matmuls and a softmax are faster once there are many of them. Measured
  on one thread (head size 64), fused ÷ matmul time: 160 rows x 4 heads over 16-40 keys (beam
  search of 32 sources) 2.1-2.6x, 32 x 4 over 24 keys 2.3x, but 1 x 12 over 64-512 keys (a batch-1
  GPT) 0.67-0.94x and 8 x 12 over 128 keys 0.89x: the matmuls run from 128 rows x heads on.

Every other case goes to `F.scaled_dot_product_attention` unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from hanformer.models.common.dropout import dropout


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    """`F.scaled_dot_product_attention` with the same arguments.

    attn_mask: boolean (True = may attend) or additive, broadcastable to (..., q, k).
    A query row that may attend nothing gets uniform weights here (torch gives zeros or NaN);
    the models never build such a row for a real token.
    """
    if q.device.type != "cpu" or (dropout_p == 0.0 and not _many_single_queries(q)):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p,
                                              is_causal=is_causal, scale=scale)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q * scale) @ k.transpose(-1, -2)
    lowest = torch.finfo(scores.dtype).min
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, lowest) if attn_mask.dtype == torch.bool else scores + attn_mask
    if is_causal:
        q_len, k_len = q.shape[-2], k.shape[-2]
        # torch's convention: query i sees keys 0..i (aligned top-left, whatever the lengths)
        causal = torch.ones(q_len, k_len, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~causal, lowest)
    # Low-precision scores are normalised in float32, as torch's math path does.
    probs = scores.softmax(dim=-1, dtype=torch.float32).to(v.dtype) if scores.dtype != torch.float32 \
        else scores.softmax(dim=-1)
    return dropout(probs, dropout_p) @ v


def _many_single_queries(q: Tensor) -> bool:
    """One query per (row, head), in at least 128 of them (see the module's note)."""
    return q.dim() == 4 and q.shape[-2] == 1 and q.shape[0] * q.shape[1] >= 128
