"""A NaN/inf loss stops training with an error naming its step and the last good checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from hanformer.errors import HanformerError


class TrainingError(HanformerError):
    """Training cannot go on (e.g. the loss became NaN/inf)."""


class NonFiniteLoss:
    """Remembers the first step whose loss was not finite, without a device sync on every step:
    the flag stays on the device until `check` reads it (when the run logs, evaluates or saves)."""

    def __init__(self, device: torch.device) -> None:
        self.first_bad_step = torch.full((), -1, dtype=torch.long, device=device)

    def note(self, loss_sum: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(loss_sum)
        first = self.first_bad_step
        self.first_bad_step = torch.where(bad & (first < 0), torch.full_like(first, step), first)

    def check(self, last_checkpoint: Path | None) -> None:
        first_bad = int(self.first_bad_step.item())
        if first_bad >= 0:
            where = (f"the last good checkpoint is {last_checkpoint}" if last_checkpoint
                     else "no checkpoint was written before it")
            raise TrainingError(
                f"loss became NaN/inf at step {first_bad}; {where}. Lower --lr, raise --warmup-steps, "
                f"keep --grad-clip on, or use --precision bf16 instead of fp16")
