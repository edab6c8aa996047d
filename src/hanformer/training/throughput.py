"""What the steps of a run did: tokens and FLOPs of a batch, and the window of steps that each
`train` record of the metrics log sums up (mean loss, tokens per second, MFU)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hanformer.training.distributed import DistInfo, all_reduce_mean
from hanformer.training.mfu import PeakFlops
from hanformer.training.progress import MetricsLog, ProgressBar

FlopsFn = Callable[[dict[str, torch.Tensor]], float]


def count_tokens(batch: dict[str, torch.Tensor]) -> Any:
    """Real tokens of a batch: the attention mask's ones (a tensor, summed without a device sync)."""
    mask = batch.get("attention_mask")
    if mask is not None:
        return mask.sum()
    ids = batch.get("input_ids")
    return ids.numel() if ids is not None else 0


def default_flops(model: nn.Module) -> FlopsFn:
    """6 x non-embedding parameters x tokens: forward + backward of every matmul per token."""
    n = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)

    def flops(batch: dict[str, torch.Tensor]) -> float:
        return 6.0 * n * count_tokens(batch)

    return flops


class LogWindow:
    """The steps since the last `train` record. The loss is summed on the device, so adding a
    micro-batch's loss costs no sync; `flush` reads it once per record."""

    def __init__(self, device: torch.device, dist: DistInfo, log: MetricsLog, bar: ProgressBar,
                 peak: PeakFlops | None, run_start: float) -> None:
        self.device, self.dist, self.log, self.bar, self.peak = device, dist, log, bar, peak
        self.run_start = run_start  # perf_counter() at step 0, counting earlier runs' time
        self._reset(time.perf_counter())

    def _reset(self, now: float) -> None:
        self.start, self.tokens, self.flops, self.steps = now, 0.0, 0.0, 0
        self.loss = torch.zeros((), device=self.device)

    def add_step(self, tokens: Any, flops: float) -> None:
        self.steps += 1
        self.tokens += float(tokens)
        self.flops += flops

    def flush(self, step: int, lr: float, grad_norm: Any, tokens_seen: int) -> tuple[float, int]:
        """Log the window (all ranks call it: the loss is averaged over them); returns its mean
        loss and the run's tokens seen after it."""
        now = time.perf_counter()
        dt = max(now - self.start, 1e-9)
        loss = float(all_reduce_mean(self.loss / self.steps, self.dist).item())
        tokens_seen += int(self.tokens * self.dist.world_size)
        metrics = {"loss": loss, "lr": lr, "tokens_per_s": self.tokens * self.dist.world_size / dt,
                   "tokens_seen": tokens_seen, "elapsed": round(now - self.run_start, 3)}
        if grad_norm is not None:
            metrics["grad_norm"] = float(grad_norm)
        if self.peak is not None:
            metrics["mfu"] = self.peak.mfu(float(self.flops) / dt)
            metrics["mfu_estimated"] = self.peak.estimated
        self.log.log("train", step, metrics)
        self.bar.update(step, metrics, now - self.run_start)
        if self.peak is not None and self.peak.probe_if_due():
            now = time.perf_counter()  # the probe's time is not the next window's training time
        self._reset(now)
        return loss, tokens_seen
