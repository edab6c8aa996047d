"""Rows of token ids of different lengths as one padded tensor: the one place batches are padded
(fine-tuning batches, served requests, generation prompts, translation sources)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad_rows(rows: Sequence[Sequence[int]], value: int, *, width: int | None = None, left: bool = False,
             device: torch.device | str | None = None) -> torch.Tensor:
    """A (len(rows), width) long tensor holding each row, filled with `value` after it (or before
    it with `left`, as decoder-only generation pads prompts); `width` defaults to the longest row."""
    width = max((len(row) for row in rows), default=0) if width is None else width
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            start = width - len(row) if left else 0
            out[i, start:start + len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out if device is None else out.to(device)


def padding_mask_of(rows: Sequence[Sequence[int]], *, width: int | None = None, left: bool = False,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The attention mask of `pad_rows(rows, ...)`: 1 on every real position, 0 on padding."""
    return pad_rows([[1] * len(row) for row in rows], 0, width=width, left=left, device=device)
