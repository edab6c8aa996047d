"""Dropout with cheaper random masks on CPU.

On CPU, `torch.bernoulli_` draws one random number per element and converts it, which makes
dropout the costliest non-matmul part of a small model's training step (about 5 ns per element
on one core, against 1.5 for the multiplication that applies it). Here the keep/drop decisions
come from 16-bit slices of 64-bit random integers, four decisions per draw, compared with a
threshold: the same mask for about a third of the work. The drop probability becomes a multiple
of 1/65536 (0.1 is applied as 0.100006). The mask is kept as booleans for the backward pass,
exactly as `F.dropout` keeps it, so memory use does not change. Other devices use `F.dropout`
(CUDA's fused kernel is already cheap). Masks come from torch's default generator, so seeding
and the trainer's saved RNG state make them repeatable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_DECISIONS_PER_DRAW = 4  # 16-bit slices of one int64
_SLICE_VALUES = 1 << 16


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device) -> Tensor:
    """Booleans, True with probability 1 - p (p rounded to a multiple of 1/65536)."""
    n = math.prod(shape)
    draws = torch.empty(-(-n // _DECISIONS_PER_DRAW), dtype=torch.int64, device=device)
    draws.random_(-(1 << 63), (1 << 63) - 1)  # the whole int64 range, so every slice is uniform
    threshold = round(p * _SLICE_VALUES) - _SLICE_VALUES // 2
    return draws.view(torch.int16)[:n].view(shape) >= threshold


class _ApplyMask(torch.autograd.Function):
    """x * keep * scale, with the boolean mask saved for the backward pass."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale  # type: ignore[attr-defined]
        return x * keep * scale

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        (keep,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * keep * ctx.scale, None, None  # type: ignore[attr-defined]


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """`F.dropout(x, p, training)`, with the cheaper mask on CPU."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return _ApplyMask.apply(x, keep_mask(x.shape, p, x.device), 1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """`nn.Dropout` with the cheaper CPU mask (same `p`, same state, same repr)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)
