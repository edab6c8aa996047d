"""Learning-rate schedule: linear warmup, then linear or cosine decay, constant, or inverse square root.

The decay follows *progress* in [0, 1], not just the step: with a wall-clock budget
(`--max-time`) progress is the larger of steps done / max steps and time used / budget, so a
time-limited run still ends its schedule at the minimum learning rate (as in Cramming).
A time-limited run can warm up by time too (`warmup_fraction`): a step count cannot be chosen
before knowing how many steps the budget will hold.

`inverse_sqrt` is the schedule of "Attention Is All You Need": the rate rises linearly for
`warmup_steps` and then falls as 1/sqrt(step), whatever the run's length. The paper writes it
d_model^-0.5 * min(step^-0.5, step * warmup^-1.5); here the peak is the configured lr, so
lr = (d_model * warmup)^-0.5 (`paper_peak_lr`) gives the paper's rates exactly. It follows the
step, not progress: a time budget does not change it (only with warmup by time, where the step
at the end of warmup is not known in advance, does it fall as 1/sqrt(progress)).
"""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, progress: float, warmup_steps: int, kind: str, min_ratio: float,
              warmup_fraction: float = 0.0) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based). With
    `warmup_fraction`, `progress` is the whole run's (warmup included) and warmup ends there."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "inverse_sqrt" and warmup_fraction <= 0.0:
        return max(min_ratio, math.sqrt(max(warmup_steps, 1) / (step + 1)))
    p = min(max(progress, 0.0), 1.0)
    if warmup_fraction > 0.0:
        if p < warmup_fraction:
            return p / warmup_fraction
        if kind == "inverse_sqrt":
            return max(min_ratio, math.sqrt(warmup_fraction / p))
        p = (p - warmup_fraction) / (1.0 - warmup_fraction)
    if kind == "constant":
        return 1.0
    if kind == "linear":
        decay = 1.0 - p
    elif kind == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * p))
    else:
        raise ValueError(f"unknown schedule {kind!r}")
    return min_ratio + (1.0 - min_ratio) * decay


def paper_peak_lr(d_model: int, warmup_steps: int) -> float:
    """The peak rate of the paper's schedule, d_model^-0.5 * warmup^-0.5 (7.0e-4 for the base
    model's 512 and 4000 steps)."""
    return float((d_model * max(warmup_steps, 1)) ** -0.5)


class Schedule:
    """Sets the learning rate of every param group before each optimizer step."""

    def __init__(self, optimizer: torch.optim.Optimizer, kind: str, warmup_steps: int,
                 min_ratio: float = 0.0, warmup_fraction: float = 0.0) -> None:
        self.optimizer = optimizer
        self.kind = kind
        self.warmup_steps = warmup_steps
        self.warmup_fraction = warmup_fraction
        self.min_ratio = min_ratio
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, lr in zip(optimizer.param_groups, self.base_lrs, strict=False):
            g["initial_lr"] = lr
        self.last_lr = self.base_lrs[0] if self.base_lrs else 0.0

    def set(self, step: int, progress: float) -> float:
        """Apply the rate for `step`; `progress` is where the decay phase stands, in [0, 1]."""
        f = lr_factor(step, progress, self.warmup_steps, self.kind, self.min_ratio, self.warmup_fraction)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=False):
            g["lr"] = base * f
        self.last_lr = self.base_lrs[0] * f if self.base_lrs else 0.0
        return self.last_lr

    def state_dict(self) -> dict:
        return {"kind": self.kind, "warmup_steps": self.warmup_steps, "min_ratio": self.min_ratio,
                "warmup_fraction": self.warmup_fraction, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = list(state["base_lrs"])
        for g, lr in zip(self.optimizer.param_groups, self.base_lrs, strict=False):
            g["initial_lr"] = lr
